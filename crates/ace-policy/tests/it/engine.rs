//! The shipped Rego policy (`policies/ace-comms.rego`, the reference example policy, adapted) through
//! the [`PolicyEngine`] facade: RBAC first, then Rego, then EHI, with counters; engine
//! failure denies; receive checks.

use std::sync::atomic::Ordering;

use ace_envelope::{Envelope, Kind, Label, SourceType};
use ace_policy::{
    ACTION_HEADER, Action, Decision, ENVIRONMENT_HEADER, EhiConfig, EhiGate, POLICY_ENGINE_FAILURE,
    PolicyEngine, Rbac, RegoPolicy,
};
use serde_json::json;

use crate::support::{message, policies_dir, principal};

#[test]
fn given_the_server_shares_them_when_compiled_then_the_policy_types_are_send_and_sync() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<PolicyEngine>();
    shareable::<ace_policy::TokenVerifier>();
    shareable::<ace_policy::ApiKeyStore>();
    shareable::<ace_policy::Principal>();
}

fn engine() -> PolicyEngine {
    PolicyEngine::load(&policies_dir(), EhiConfig::default()).expect("shipped policies load")
}

fn publish(engine: &PolicyEngine, kind: SourceType, roles: &[&str], env: &Envelope) -> Decision {
    let p = principal(kind, roles, 1);
    engine.authorize(&p, Action::Publish, &env.subject, Some(env))
}

#[test]
fn given_the_seed_agent_rule_when_agents_command_agents_or_others_then_only_agents_pass() {
    let e = engine();
    let to_agent = message("ace.comms.a2a.agent.b7.cmd.v1");
    assert!(publish(&e, SourceType::Agent, &["agent"], &to_agent).is_allow());
    let to_tool = message("ace.comms.agent.tool.search.cmd.v1");
    let d = publish(&e, SourceType::Agent, &["agent"], &to_tool);
    assert!(d.is_deny());
    assert!(
        d.reasons()[0].contains("only send commands and queries to agents"),
        "{d:?}"
    );
    // "Admins everything": an admin of agent type is exempt.
    assert!(publish(&e, SourceType::Agent, &["admin"], &to_tool).is_allow());
    // Events are not commands: an agent may announce them anywhere RBAC allows.
    let event =
        Envelope::builder(Kind::Event, "ace.comms.agent.tool.search.evt.v1").build_unchecked();
    assert!(publish(&e, SourceType::Agent, &["agent"], &event).is_allow());
}

#[test]
fn given_a_high_ehi_score_when_published_then_rego_and_the_gate_both_ask_for_approval() {
    let e = engine();
    let env = Envelope::builder(Kind::Command, "ace.comms.matrix.room.ops.cmd.v1")
        .ehi_score(0.75)
        .build_unchecked();
    let d = publish(&e, SourceType::Human, &["human"], &env);
    let Decision::RequireApproval { reasons } = d else {
        panic!("held expected: {d:?}")
    };
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("policy threshold 0.7"));
    assert!(reasons[1].contains("threshold 0.7"));
}

#[test]
fn given_a_per_tool_threshold_when_the_score_is_below_it_then_only_the_default_rule_counts() {
    let e = engine();
    let env = Envelope::builder(Kind::Command, "ace.comms.matrix.room.ops.cmd.v1")
        .header(ACTION_HEADER, "delete")
        .ehi_score(0.85)
        .build_unchecked();
    // delete's threshold is 0.9: the gate passes it; the shipped Rego rule (default 0.7) holds it.
    let d = publish(&e, SourceType::Human, &["human"], &env);
    assert_eq!(d.reasons().len(), 1, "{d:?}");
    assert!(d.reasons()[0].contains("policy threshold"));
}

#[test]
fn given_a_production_target_when_published_without_then_with_an_approval_then_held_then_allowed() {
    let e = engine();
    let mut env = Envelope::builder(Kind::Command, "ace.comms.http.api.orders.cmd.v1")
        .header(ENVIRONMENT_HEADER, "production")
        .build_unchecked();
    let d = publish(&e, SourceType::Human, &["human"], &env);
    assert_eq!(
        d,
        Decision::RequireApproval {
            reasons: vec!["a production target needs an approval".into()]
        }
    );
    env.governance.approval_id = Some("apr-1".into());
    assert!(publish(&e, SourceType::Human, &["human"], &env).is_allow());
}

/// The shipped policies with `environments.yaml` saying the orders API is production.
fn engine_with_production_orders() -> (tempfile::TempDir, PolicyEngine) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["rbac.yaml", "ace-comms.rego"] {
        std::fs::copy(policies_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("environments.yaml"),
        "environments:\n  - subjects: [\"ace.comms.http.api.orders.>\"]\n    environment: production\n",
    )
    .unwrap();
    let e = PolicyEngine::load(dir.path(), EhiConfig::default()).unwrap();
    (dir, e)
}

#[test]
fn given_a_configured_production_subject_when_the_header_is_any_spelling_or_missing_then_held() {
    let (_dir, e) = engine_with_production_orders();
    let held = Decision::RequireApproval {
        reasons: vec!["a production target needs an approval".into()],
    };
    let subject = "ace.comms.http.api.orders.cmd.v1";
    for header in [
        Some("Production"),
        Some("PRODUCTION"),
        Some(" production "),
        Some("staging"),
        None,
    ] {
        let mut builder = Envelope::builder(Kind::Command, subject);
        if let Some(value) = header {
            builder = builder.header(ENVIRONMENT_HEADER, value);
        }
        let env = builder.build_unchecked();
        assert_eq!(
            publish(&e, SourceType::Human, &["human"], &env),
            held,
            "{header:?}"
        );
    }
    // Another subject without the header is not production.
    let other = message("ace.comms.http.api.catalog.cmd.v1");
    assert!(publish(&e, SourceType::Human, &["human"], &other).is_allow());
    // Nor is it with a header naming another environment; `Production` there is held.
    let claimed = Envelope::builder(Kind::Command, "ace.comms.http.api.catalog.cmd.v1")
        .header(ENVIRONMENT_HEADER, "Production")
        .build_unchecked();
    assert_eq!(publish(&e, SourceType::Human, &["human"], &claimed), held);
}

#[test]
fn given_an_input_built_elsewhere_when_the_shipped_rule_reads_it_then_it_normalizes_too() {
    let rego = RegoPolicy::load_dir(&policies_dir(), json!({"ehi_threshold": 0.7})).unwrap();
    let input = |environment: serde_json::Value| {
        json!({"principal": {"id": "h", "type": "human", "roles": ["human"], "clearance": 1},
               "action": "publish", "subject": "ace.comms.http.api.orders.cmd.v1",
               "target": {"protocol": "http", "entity_type": "api", "entity_id": "orders",
                          "verb": "cmd", "name": null, "version": "v1",
                          "environment": environment},
               "has_approval": false})
    };
    assert!(!rego.evaluate(&input(json!(" PRODUCTION "))).is_allow());
    assert!(
        rego.evaluate(&input(json!(null))).is_allow(),
        "null is no environment"
    );
    assert!(
        rego.evaluate(&input(json!(7))).is_allow(),
        "nor is a number"
    );
}

#[test]
fn given_a_bad_environments_file_when_the_directory_loads_then_start_up_fails_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        policies_dir().join("rbac.yaml"),
        dir.path().join("rbac.yaml"),
    )
    .unwrap();
    let file = dir.path().join("environments.yaml");
    std::fs::write(
        &file,
        "environments:\n  - {subjects: [\"ace..x\"], environment: production}\n",
    )
    .unwrap();
    let err = PolicyEngine::load(dir.path(), EhiConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{}: environments[0].subjects[0]", file.display())),
        "{err}"
    );
}

#[test]
fn given_an_rbac_denial_when_authorized_then_rego_is_not_consulted_and_denial_is_counted() {
    let e = engine();
    let env = message("ace.comms.matrix.room.ops.cmd.v1");
    let d = publish(&e, SourceType::Agent, &["agent"], &env);
    assert!(d.reasons()[0].starts_with("rbac:"), "{d:?}");
    let rego = e.rego().expect("shipped policy");
    assert_eq!(rego.stats().cache_misses.load(Ordering::Relaxed), 0);
    assert_eq!(e.counters().denied.load(Ordering::Relaxed), 1);
}

#[test]
fn given_repeated_requests_when_authorized_then_rego_answers_from_the_cache_and_counters_add_up() {
    let e = engine();
    let env = message("ace.comms.a2a.agent.b7.cmd.v1");
    for _ in 0..3 {
        assert!(publish(&e, SourceType::Agent, &["agent"], &env).is_allow());
    }
    let held = Envelope::builder(Kind::Command, "ace.comms.a2a.agent.b7.cmd.v1")
        .ehi_score(0.99)
        .build_unchecked();
    assert!(!publish(&e, SourceType::Agent, &["agent"], &held).is_allow());
    let stats = e.rego().unwrap().stats();
    assert_eq!(stats.cache_hits.load(Ordering::Relaxed), 2);
    assert_eq!(stats.cache_misses.load(Ordering::Relaxed), 2);
    assert_eq!(e.counters().allowed.load(Ordering::Relaxed), 3);
    assert_eq!(e.counters().held.load(Ordering::Relaxed), 1);
}

#[test]
fn given_a_failing_policy_when_authorized_then_the_engine_denies_with_policy_engine_failure() {
    let rbac = Rbac::load(&policies_dir().join("rbac.yaml")).unwrap();
    // Calling an undefined function's result is an error at evaluation time in regorus.
    let broken = "package ace.comms\ndeny contains x if { x := to_number(input.subject) }\n";
    let rego =
        RegoPolicy::from_sources(vec![("broken.rego".into(), broken.into())], json!({})).unwrap();
    let e = PolicyEngine::new(rbac, Some(rego), EhiGate::default());
    let env = message("ace.comms.a2a.agent.b7.cmd.v1");
    assert_eq!(
        publish(&e, SourceType::Agent, &["agent"], &env),
        Decision::deny(POLICY_ENGINE_FAILURE)
    );
    assert_eq!(
        e.rego().unwrap().stats().failures.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn given_a_subscription_when_authorized_then_ehi_is_not_applied() {
    let e = engine();
    let p = principal(SourceType::Agent, &["agent"], 1);
    assert!(
        e.authorize(&p, Action::Subscribe, "ace.comms.agent.>", None)
            .is_allow()
    );
}

#[test]
fn given_labels_and_permissions_when_receiving_then_clearance_and_grants_decide() {
    let e = engine();
    let secret = Envelope::builder(Kind::Event, "ace.comms.agent.a.b.evt.v1")
        .label(Label::Secret)
        .rbac(["intel.read"])
        .build_unchecked();
    let admin = principal(SourceType::Human, &["admin"], 5);
    assert!(e.can_receive(&admin, &secret).is_allow());
    let agent = principal(SourceType::Agent, &["agent"], 3);
    let Decision::Deny { reasons } = e.can_receive(&agent, &secret) else {
        panic!("denied expected")
    };
    assert_eq!(reasons.len(), 2, "clearance and permission: {reasons:?}");
    assert_eq!(e.counters().receive_denied.load(Ordering::Relaxed), 1);
}

#[test]
fn given_a_directory_without_rego_when_loaded_then_rbac_and_ehi_decide_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        policies_dir().join("rbac.yaml"),
        dir.path().join("rbac.yaml"),
    )
    .unwrap();
    let e = PolicyEngine::load(dir.path(), EhiConfig::default()).unwrap();
    assert!(e.rego().is_none());
    let to_tool = message("ace.comms.agent.tool.search.cmd.v1");
    // Without the shipped Rego policy, RBAC alone allows what the agent rule would have refused.
    assert!(publish(&e, SourceType::Agent, &["agent"], &to_tool).is_allow());
}

#[test]
fn given_a_broken_rego_file_when_the_directory_loads_then_start_up_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        policies_dir().join("rbac.yaml"),
        dir.path().join("rbac.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("zz-broken.rego"),
        "package ace.comms\ndeny contains if {",
    )
    .unwrap();
    let err = PolicyEngine::load(dir.path(), EhiConfig::default()).unwrap_err();
    assert!(err.to_string().contains("zz-broken.rego"), "{err}");
}

#[test]
fn given_the_embedded_policies_when_loaded_then_they_decide_like_the_policies_directory() {
    let embedded = PolicyEngine::embedded(EhiConfig::default()).expect("embedded policies load");
    let on_disk = PolicyEngine::load(&policies_dir(), EhiConfig::default()).expect("dir loads");
    let agent = principal(SourceType::Agent, &["agent"], 0);
    for subject in [
        "ace.comms.agent.planner.p1.cmd.v1",
        "ace.comms.agent.db.x.cmd.v1",
        "ace.comms.matrix.room.ops.evt.v1",
    ] {
        let envelope = message(subject);
        assert_eq!(
            embedded.authorize(&agent, Action::Publish, subject, Some(&envelope)),
            on_disk.authorize(&agent, Action::Publish, subject, Some(&envelope)),
            "{subject}"
        );
    }
    assert!(embedded.rego().is_some(), "the example Rego policy ships");
}
