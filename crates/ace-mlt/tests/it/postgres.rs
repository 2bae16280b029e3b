//! The same kernel over PostgreSQL (`ACE_TEST_POSTGRES_URL`), each test in a schema of its own:
//! the migrations applied once, then insights, plans and snapshots as on the embedded store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ace_envelope::SystemClock;
use ace_mlt::state::StateKind;
use ace_mlt::{Decision, Kernel, MltConfig, PostgresStore, Submitted};
use serde_json::json;

use crate::plans::plan;
use crate::{Recorder, experience};

/// A fresh schema name for this process.
fn schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "mlt_it_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store(test: &str) -> Option<(String, String, PostgresStore)> {
    let url = ace_testkit::postgres_url(test)?;
    let schema = schema();
    let (u, s) = (url.clone(), schema.clone());
    let store = tokio::task::spawn_blocking(move || PostgresStore::open(&u, &s).unwrap())
        .await
        .unwrap();
    Some((url, schema, store))
}

fn kernel(store: PostgresStore) -> Kernel {
    let config = MltConfig {
        baseline_window: 10,
        current_window: 10,
        ..MltConfig::default()
    };
    Kernel::new(Arc::new(store), config, Arc::new(SystemClock)).unwrap()
}

#[tokio::test]
async fn given_a_new_schema_when_opened_twice_then_each_migration_is_applied_once() {
    let Some((url, schema, first)) = store("mlt_postgres_migrations").await else {
        return;
    };
    drop(first);
    let versions = tokio::task::spawn_blocking(move || {
        PostgresStore::open(&url, &schema).unwrap();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let rows = client
            .query(&format!("SELECT version FROM {schema}.mlt_schema_migrations ORDER BY version"), &[])
            .unwrap();
        let tables = client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
                &[&schema],
            )
            .unwrap();
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        let tables: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
        (versions, tables)
    })
    .await
    .unwrap();
    assert_eq!(versions.0, [1, 2]);
    for table in [
        "mlt_experiences",
        "mlt_insights",
        "mlt_plans",
        "mlt_snapshots",
        "mlt_specialist_reports",
        "mlt_state",
    ] {
        assert!(
            versions.1.iter().any(|t| t == table),
            "{table} in {:?}",
            versions.1
        );
    }
}

#[tokio::test]
async fn given_postgres_when_the_ml_flow_runs_then_insights_plans_and_rollbacks_behave_as_embedded()
{
    let Some((_, _, store)) = store("mlt_postgres_flow").await else {
        return;
    };
    let kernel = kernel(store);
    let recorder = Recorder::new();
    for n in 0..20 {
        let accuracy = if n < 10 { 0.9 } else { 0.7 } + (n % 3) as f64 * 0.001;
        let exp = experience(
            &format!("exp_pg_{n:04}"),
            "model_pg",
            n,
            json!({"metrics": {"accuracy": accuracy}}),
        );
        kernel.submit_experience(exp, &*recorder).await.unwrap();
    }
    let again = experience(
        "exp_pg_0003",
        "model_pg",
        3,
        json!({"metrics": {"accuracy": 0.9}}),
    );
    assert_eq!(
        kernel.submit_experience(again, &*recorder).await.unwrap()["duplicate"],
        true
    );
    assert_eq!(recorder.payloads("MODEL_DRIFT_ALERT").len(), 1);
    let served = kernel
        .insights(Some("2000-01-01T00:00:00Z"), Some("10"))
        .await
        .unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["type"], "drift");

    let before = kernel
        .export_snapshot(json!({"kind": "mlt"}))
        .await
        .unwrap();
    *recorder.verdict.lock().unwrap() = Submitted::Held {
        approval_id: "appr-pg".into(),
    };
    let status = kernel
        .propose(plan("plan_pg_00001", "high"), &*recorder, Some("idem-pg"))
        .await
        .unwrap();
    assert_eq!(status["status"], "pending");
    let approve = Decision {
        approval_id: "appr-pg".into(),
        approved: true,
        decided_by: "human:bob".into(),
        reason: None,
    };
    assert!(kernel.decided(approve, &*recorder).await.unwrap());
    assert_eq!(
        kernel.plan_status("plan_pg_00001").await.unwrap()["status"],
        "applied"
    );
    let request = json!({"target": "mlt", "to_snapshot": before["snapshot_id"], "reason": "undo"});
    kernel.rollback(request, &*recorder, None).await.unwrap();
    let completed = &recorder.payloads("ROLLBACK_COMPLETED")[0];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["state_hash"], before["state_hash"]);
    assert_eq!(
        kernel.current(StateKind::Mlt).await.unwrap()["applied_plans"],
        json!([])
    );
}
