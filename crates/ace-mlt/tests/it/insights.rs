//! Seeded synthetic streams whose right answer is known, through the whole kernel: stored,
//! evaluated, insights stored and announced.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::{Recorder, experience, kernel};

/// A normal draw (Box–Muller) of mean `mu` and deviation `sigma`.
fn normal(rng: &mut StdRng, mu: f64, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
    mu + sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Feeds `n` experiences of `model` whose signals `make` draws, numbered from `from`.
async fn feed(
    kernel: &ace_mlt::Kernel,
    recorder: &Recorder,
    model: &str,
    from: i64,
    n: i64,
    mut make: impl FnMut(i64) -> Value,
) {
    for i in from..from + n {
        let exp = experience(&format!("exp_{model}_{i:04}"), model, i, make(i));
        let answer = kernel.submit_experience(exp, recorder).await.unwrap();
        assert_eq!(answer["duplicate"], json!(false));
    }
}

#[tokio::test]
async fn given_a_metric_that_shifts_when_the_current_window_fills_then_one_drift_insight_and_alert()
{
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let mut rng = StdRng::seed_from_u64(7);
    // Baseline: accuracy around 0.90; then the same for the control model, and a drop to
    // 0.80 for the drifting one.
    let mut draw = |mu| json!({"metrics": {"accuracy": normal(&mut rng, mu, 0.01)}});
    feed(&kernel, &recorder, "model_drifting", 0, 10, |_| draw(0.90)).await;
    feed(&kernel, &recorder, "model_steady", 0, 10, |_| draw(0.90)).await;
    feed(&kernel, &recorder, "model_steady", 10, 10, |_| draw(0.90)).await;
    assert!(
        recorder.payloads("MLT_INSIGHT_READY").is_empty(),
        "the steady stream raises nothing"
    );
    feed(&kernel, &recorder, "model_drifting", 10, 10, |_| draw(0.80)).await;

    let insights = recorder.payloads("MLT_INSIGHT_READY");
    assert_eq!(insights.len(), 1, "{insights:?}");
    let insight = &insights[0]["insight"];
    assert_eq!(insight["type"], "drift");
    assert_eq!(insight["target"], "model_drifting");
    assert!(insight["confidence"].as_f64().unwrap() > 0.99, "{insight}");
    assert_eq!(insight["evidence"][0]["metric"], "accuracy");
    assert_eq!(
        insight["evidence"][0]["experience_id"],
        "exp_model_drifting_0019"
    );
    let alerts = recorder.payloads("MODEL_DRIFT_ALERT");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["model_key"], "model_drifting");
    assert_eq!(alerts[0]["measure"], "psi");
    assert_eq!(alerts[0]["feature"], "accuracy");
    assert!(alerts[0]["value"].as_f64().unwrap() >= 0.2);
    assert_eq!(
        alerts[0]["severity"], "critical",
        "disjoint windows: PSI far above 4x"
    );

    // The condition lasts: more drifted experiences raise nothing new.
    feed(&kernel, &recorder, "model_drifting", 20, 5, |_| draw(0.80)).await;
    assert_eq!(recorder.payloads("MLT_INSIGHT_READY").len(), 1);
    // And the insight is served by time.
    let served = kernel
        .insights(Some("2000-01-01T00:00:00Z"), None)
        .await
        .unwrap();
    assert_eq!(served, vec![insight.clone()]);
    let none = kernel
        .insights(Some("2999-01-01T00:00:00Z"), Some("5"))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn given_latency_that_regresses_when_evaluated_then_a_latency_insight_names_both_p95s() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let mut rng = StdRng::seed_from_u64(11);
    let mut draw = |mu| json!({"metrics": {"accuracy": 0.9}, "latency": {"p95_ms": normal(&mut rng, mu, 5.0)}});
    feed(&kernel, &recorder, "model_slow", 0, 10, |_| draw(100.0)).await;
    feed(&kernel, &recorder, "model_fast", 0, 10, |_| draw(100.0)).await;
    feed(&kernel, &recorder, "model_fast", 10, 10, |_| draw(105.0)).await;
    assert!(
        recorder.payloads("MLT_INSIGHT_READY").is_empty(),
        "5% slower is within 1.2x"
    );
    feed(&kernel, &recorder, "model_slow", 10, 10, |_| draw(160.0)).await;

    let insights = recorder.payloads("MLT_INSIGHT_READY");
    assert_eq!(insights.len(), 1, "{insights:?}");
    let insight = &insights[0]["insight"];
    assert_eq!(
        (insight["type"].as_str(), insight["target"].as_str()),
        (Some("latency"), Some("model_slow"))
    );
    assert_eq!(insight["recommendation"]["action"], "rollback");
    assert!(insight["confidence"].as_f64().unwrap() > 0.99);
    assert!(insight["evidence"][0]["baseline"].as_f64().unwrap() < 120.0);
    assert!(
        recorder.payloads("MODEL_DRIFT_ALERT").is_empty(),
        "latency is not drift"
    );
}

#[tokio::test]
async fn given_a_fairness_gap_when_evaluated_then_a_fairness_insight_with_the_share_above() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let signals = |delta: f64| {
        json!({"metrics": {"accuracy": 0.9},
               "fairness": {"demographic_parity_delta": delta, "groups": ["group_a", "group_b"]}})
    };
    feed(&kernel, &recorder, "model_fair", 0, 20, |_| signals(0.05)).await;
    assert!(recorder.payloads("MLT_INSIGHT_READY").is_empty());
    // 8 of the last 10 at 0.3, 2 at 0.05: mean 0.25 > 0.1, share above the bound 0.8.
    feed(&kernel, &recorder, "model_unfair", 0, 10, |_| signals(0.05)).await;
    feed(&kernel, &recorder, "model_unfair", 10, 10, |i| {
        signals(if i < 12 { 0.05 } else { 0.3 })
    })
    .await;
    let insights = recorder.payloads("MLT_INSIGHT_READY");
    assert_eq!(insights.len(), 1, "{insights:?}");
    let insight = &insights[0]["insight"];
    assert_eq!(insight["type"], "fairness");
    assert_eq!(insight["target"], "model_unfair");
    assert!((insight["confidence"].as_f64().unwrap() - 0.8).abs() < 1e-9);
}

#[tokio::test]
async fn given_a_failed_compliance_check_when_ingested_then_a_governance_insight_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let signals = json!({"metrics": {"accuracy": 0.9},
                         "compliance": {"passed": false, "violations": ["gdpr_art_22"]}});
    let exp = experience("exp_noncompliant", "model_x", 0, signals);
    kernel
        .submit_experience(exp.clone(), &*recorder)
        .await
        .unwrap();
    let insights = recorder.payloads("MLT_INSIGHT_READY");
    assert_eq!(insights.len(), 1);
    let insight = &insights[0]["insight"];
    assert_eq!(insight["type"], "governance");
    assert_eq!(insight["confidence"], 1.0);
    assert_eq!(insight["evidence"][0]["experience_id"], "exp_noncompliant");
    assert!(
        insight["recommendation"]["rationale"]
            .as_str()
            .unwrap()
            .contains("gdpr_art_22")
    );

    // A repeat is a duplicate: nothing stored or announced again.
    let again = kernel.submit_experience(exp, &*recorder).await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(
        recorder
            .names()
            .iter()
            .filter(|n| **n == "EXPERIENCE_INGESTED")
            .count(),
        1
    );
}

#[tokio::test]
async fn given_bad_experiences_and_queries_when_submitted_then_each_is_refused_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let mut exp = experience(
        "exp_bad_00001",
        "model_x",
        0,
        json!({"metrics": {"accuracy": 0.9}}),
    );
    exp["signals"]["metrics"]["not_a_metric"] = json!(1.0);
    let err = kernel.submit_experience(exp, &*recorder).await.unwrap_err();
    let ace_mlt::MltError::Contract { errors, .. } = err else {
        panic!("{err}")
    };
    assert!(
        errors
            .iter()
            .any(|e| e.instance_pointer.starts_with("/signals/metrics")),
        "{errors:?}"
    );
    assert!(
        recorder.names().is_empty(),
        "nothing published for a refused experience"
    );
    for (since, limit) in [
        (None, None),
        (Some("yesterday"), None),
        (Some("2026-01-01T00:00:00Z"), Some("0")),
        (Some("2026-01-01T00:00:00Z"), Some("1001")),
    ] {
        let err = kernel.insights(since, limit).await.unwrap_err();
        assert!(matches!(err, ace_mlt::MltError::BadRequest { .. }), "{err}");
    }
}
