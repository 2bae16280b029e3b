use std::path::Path;
use std::sync::Arc;

use ace_workflows::{Registry, State, validate_dir};

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows"))
}

const NINE: [&str; 9] = [
    "kpi_critical_healing",
    "kpi_warning_adaptation",
    "trust_degradation_review",
    "test_quality_critical_healing",
    "test_quality_degraded_learning",
    "test_quality_improvement_tracking",
    "healing_recovery_metrics",
    "db_critical_audit",
    "kernel_crash_response",
];

#[test]
fn given_the_shipped_directory_when_validated_then_the_nine_workflows_load() {
    assert_eq!(validate_dir(dir()), Ok(9));
    let (registry, _) = Registry::open(dir(), Arc::new(State::memory())).unwrap();
    let snapshot = registry.snapshot();
    let names: Vec<&str> = snapshot
        .all()
        .iter()
        .map(|c| c.workflow.name.as_str())
        .collect();
    assert_eq!(names, NINE);
}
