//! `ace-comms contracts …` end to end.

use serde_json::{Value, json};

use crate::{ace, contracts_dir, write};

#[test]
fn given_the_embedded_contracts_when_listed_then_the_envelope_and_ml_subjects_show() {
    let run = ace(&["contracts", "list"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("SUBJECT"),
        "a table with headers: {}",
        run.stdout
    );
    for subject in ["comms.envelope", "mlt.experience", "intelligence.result"] {
        assert!(run.stdout.contains(subject), "{subject} listed");
    }

    let run = ace(&["contracts", "list", "--json"], b"");
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let experience = rows
        .iter()
        .find(|r| r["subject"] == "mlt.experience")
        .unwrap();
    assert_eq!(
        experience["compatibility"], "none",
        "registry.yaml: mlt.experience is none"
    );
    let result = rows
        .iter()
        .find(|r| r["subject"] == "intelligence.result")
        .unwrap();
    assert_eq!(result["compatibility"], "full");
}

#[test]
fn given_a_subject_when_shown_then_its_schema_prints() {
    let run = ace(&["contracts", "show", "comms.envelope"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let schema: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(schema["properties"]["subject"].is_object());

    let run = ace(&["contracts", "show", "no.such.subject"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no.such.subject"), "{}", run.stderr);
}

#[test]
fn given_every_valid_ml_example_when_validated_then_exit_0() {
    let dir = contracts_dir().join("ml/examples");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let subject = subject_of(path.file_stem().unwrap().to_str().unwrap());
        let run = ace(
            &[
                "contracts",
                "validate",
                path.to_str().unwrap(),
                "--schema",
                &subject,
            ],
            b"",
        );
        assert_eq!(
            run.code,
            0,
            "{}: {}{}",
            path.display(),
            run.stdout,
            run.stderr
        );
        assert!(run.stdout.starts_with("valid:"));
    }
}

/// `mlt.experience.2` → `mlt.experience`: example files may carry a numeric suffix.
fn subject_of(stem: &str) -> String {
    match stem.rsplit_once('.') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head.to_owned(),
        _ => stem.to_owned(),
    }
}

#[test]
fn given_every_invalid_ml_example_when_validated_then_exit_1_naming_its_pointer() {
    let dir = contracts_dir().join("ml/examples/invalid");
    let scratch = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let instance = write(
            scratch.path(),
            "instance.json",
            &case["instance"].to_string(),
        );
        let subject = case["subject"].as_str().unwrap();
        let run = ace(
            &[
                "contracts",
                "validate",
                &instance,
                "--schema",
                subject,
                "--json",
            ],
            b"",
        );
        assert_eq!(run.code, 1, "{}: {}", path.display(), run.stdout);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let pointers: Vec<&str> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        let expected = case["expect_pointer"].as_str().unwrap();
        assert!(
            pointers.contains(&expected),
            "{}: {expected} not in {pointers:?}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 10, "at least ten invalid examples, saw {seen}");
}

#[test]
fn given_a_new_envelope_when_validated_then_exit_0() {
    let made = ace(
        &[
            "envelope",
            "new",
            "--subject",
            "ace.comms.agent.planner.a1.evt.done.v1",
        ],
        b"",
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = ace(&["contracts", "validate", "-"], made.stdout.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("envelope gme/1"));
}

#[test]
fn given_a_broken_envelope_when_validated_then_every_problem_prints_with_its_pointer() {
    let made = ace(
        &[
            "envelope",
            "new",
            "--subject",
            "ace.comms.agent.planner.a1.evt.done.v1",
        ],
        b"",
    );
    let mut envelope: Value = serde_json::from_str(&made.stdout).unwrap();
    envelope["subject"] = json!("ace..bad subject");
    envelope["priority"] = json!("P9");
    let run = ace(
        &["contracts", "validate", "-", "--json"],
        envelope.to_string().as_bytes(),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["pointer"] == "/priority" && e["check"] == "envelope.schema"),
        "{errors:?}"
    );

    envelope["priority"] = json!("P1");
    let run = ace(
        &["contracts", "validate", "-", "--json"],
        envelope.to_string().as_bytes(),
    );
    assert_eq!(run.code, 1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["pointer"] == "/subject" && e["check"] == "envelope"),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["pointer"] == "/subject" && e["check"] == "envelope.schema"),
        "{errors:?}"
    );
}

#[test]
fn given_an_envelope_whose_payload_breaks_its_schema_when_validated_then_the_payload_pointer_prints()
 {
    let made = ace(
        &[
            "envelope",
            "new",
            "--subject",
            "ace.comms.kernel.mlt.k1.evt.experience.v1",
            "--schema",
            "mlt.experience@1.0.0",
            "--payload",
            r#"{"not":"an experience"}"#,
        ],
        b"",
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = ace(&["contracts", "validate", "-"], made.stdout.as_bytes());
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("[payload]"), "{}", run.stdout);

    let mut envelope: Value = serde_json::from_str(&made.stdout).unwrap();
    envelope["schema"] = json!("no.such.contract@1.0.0");
    let run = ace(
        &["contracts", "validate", "-"],
        envelope.to_string().as_bytes(),
    );
    assert_eq!(
        run.code, 1,
        "an unknown payload contract makes the envelope invalid"
    );
    assert!(run.stdout.contains("/schema"), "{}", run.stdout);
}

#[test]
fn given_malformed_json_when_validated_then_exit_1_with_line_and_column() {
    let run = ace(
        &["contracts", "validate", "-"],
        b"{\"spec\": \"gme/1\",\n  oops}",
    );
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("line 2"), "{}", run.stdout);
}

#[test]
fn given_usage_errors_when_validating_then_exit_2() {
    let run = ace(
        &["contracts", "validate", "-"],
        br#"{"just": "a document"}"#,
    );
    assert_eq!(run.code, 2, "not an envelope and no --schema");
    assert!(run.stderr.contains("--schema"), "{}", run.stderr);

    let run = ace(
        &["contracts", "validate", "-", "--schema", "no.such.subject"],
        b"{}",
    );
    assert_eq!(run.code, 2, "unknown schema");

    let run = ace(&["contracts", "validate", "/no/such/file.json"], b"");
    assert_eq!(run.code, 2, "missing file");
    assert!(run.stderr.contains("/no/such/file.json"));

    let run = ace(&["contracts", "frobnicate"], b"");
    assert_eq!(run.code, 2, "clap usage error");
}

#[test]
fn given_a_new_required_property_when_compat_checked_then_backward_fails_and_none_passes() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "old.json",
        r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#,
    );
    let new = write(
        dir.path(),
        "new.json",
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}"#,
    );
    let run = ace(&["contracts", "compat", &old, &new], b"");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("/required") || run.stdout.contains("/properties/b"),
        "{}",
        run.stdout
    );

    let run = ace(
        &[
            "contracts",
            "compat",
            &old,
            &new,
            "--mode",
            "none",
            "--json",
        ],
        b"",
    );
    assert_eq!(run.code, 0);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["compatible"], true);

    let run = ace(
        &["contracts", "compat", &old, &new, "--mode", "sideways"],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("backward_transitive"), "{}", run.stderr);
}

#[test]
fn given_a_running_server_when_registering_and_checking_then_its_registry_answers_with_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::serve::start(&dir.path().join("data"), &[]);
    let v1 = write(
        dir.path(),
        "v1.json",
        r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#,
    );
    let v2 = write(
        dir.path(),
        "v2.json",
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}"#,
    );
    let on = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", server.url.as_str()]);
        ace(&all, b"")
    };

    let run = on(&["contracts", "register", "test.cli@1.0.0", &v1]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("registered"), "{}", run.stdout);

    let run = on(&["contracts", "compat", "--subject", "test.cli@2.0.0", &v2]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("/properties/b"), "{}", run.stdout);
    let run = on(&[
        "contracts",
        "compat",
        "--subject",
        "test.cli@2.0.0",
        &v2,
        "--mode",
        "none",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["compatible"], true);

    let run = on(&["contracts", "register", "test.cli@2.0.0", &v2, "--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("CONFLICT") && run.stderr.contains("/properties/b"),
        "{}",
        run.stderr
    );

    let run = on(&["contracts", "register", "test.cli", &v1]);
    assert_eq!(run.code, 2, "no version is a usage error: {}", run.stderr);
    assert!(run.stderr.contains("subject@1.2.3"), "{}", run.stderr);
    let run = on(&[
        "contracts",
        "compat",
        "--subject",
        "test.cli@2.0.0",
        &v1,
        &v2,
    ]);
    assert_ne!(run.code, 0);
    server.terminate();
}
