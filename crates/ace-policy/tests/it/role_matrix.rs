//! The full allow/deny matrix of the shipped `policies/rbac.yaml`: every seed role, the
//! approver role, an unknown role and no role, for publish and subscribe, on a subject of
//! every protocol family, system subjects and a foreign subject; then subscription patterns and
//! role combinations where deny must win.

use ace_envelope::SourceType;
use ace_policy::{Action, RBAC_FILE, Rbac};

use crate::support::{policies_dir, principal};

/// The subjects, in the column order of the tables below.
const SUBJECTS: [&str; 9] = [
    "ace.comms.agent.planner.p1.cmd.v1",        // agent protocol
    "ace.comms.a2a.agent.b7.evt.v1",            // agent-to-agent
    "ace.comms.matrix.room.ops.evt.v1",         // Matrix
    "ace.comms.http.api.orders.cmd.v1",         // HTTP
    "ace.comms.agent.planner.p1.qry.status.v1", // a query
    "ace.comms.system.hitl.approval.a1.cmd.v1", // an approval decision
    "ace.comms.system.hitl.approval.a1.qry.v1", // a query on a system subject
    "ace.comms.system.dlq.orders",              // dead letters
    "other.app.event",                          // outside ace.comms
];

/// Per role: the expected publish row and subscribe row, `A` allow / `D` deny per subject.
const MATRIX: [(&str, &str, &str); 7] = [
    //  role        publish      subscribe
    ("admin", "AAAAADDAD", "AAAAAAAAD"),
    ("agent", "AADDADDDD", "AADDADDDD"),
    ("human", "DDAADDDDD", "DDAADDDDD"),
    ("observer", "DDDDADDDD", "DDDDADDDD"),
    ("approver", "DDDDDAADD", "DDDDDAADD"),
    ("ghost", "DDDDDDDDD", "DDDDDDDDD"), // a role the file does not define
    ("", "DDDDDDDDD", "DDDDDDDDD"),      // no role at all
];

fn rbac() -> Rbac {
    Rbac::load(&policies_dir().join(RBAC_FILE)).expect("shipped rbac.yaml loads")
}

fn roles(spec: &str) -> Vec<&str> {
    spec.split('+').filter(|r| !r.is_empty()).collect()
}

fn check(rbac: &Rbac, spec: &str, action: Action, subject: &str, expected: char) {
    let p = principal(SourceType::Agent, &roles(spec), 0);
    let decision = rbac.authorize(&p, action, subject);
    let got = if decision.is_allow() { 'A' } else { 'D' };
    assert_eq!(
        got, expected,
        "roles `{spec}` {action:?} `{subject}`: {decision:?}"
    );
    if got == 'D' {
        assert!(!decision.reasons().is_empty(), "a denial carries a reason");
    }
}

#[test]
fn given_the_shipped_roles_when_every_role_action_and_subject_is_tried_then_the_matrix_holds() {
    let rbac = rbac();
    for (role, publish, subscribe) in MATRIX {
        for (action, row) in [(Action::Publish, publish), (Action::Subscribe, subscribe)] {
            for (subject, expected) in SUBJECTS.iter().zip(row.chars()) {
                check(&rbac, role, action, subject, expected);
            }
        }
    }
}

#[test]
fn given_subscription_patterns_when_tried_then_only_fully_covered_patterns_are_allowed() {
    let rbac = rbac();
    // pattern, then the expected answer for admin, agent, human, observer, approver
    let table = [
        ("ace.comms.>", "ADDDD"),
        ("ace.comms.agent.>", "AADDD"),
        ("ace.comms.a2a.*.*.evt.>", "AADDD"),
        // could match ace.comms.system.….qry.…, which observers are denied
        ("ace.comms.*.*.*.qry.>", "ADDDD"),
        ("ace.comms.agent.*.*.qry.>", "AADAD"),
        ("ace.comms.system.hitl.>", "ADDDA"),
        // reading the ledger: admin and approver, not observer (see policies/rbac.yaml)
        ("ace.comms.system.ledger.>", "ADDDA"),
        (">", "DDDDD"),
        ("ace.*.agent.>", "DDDDD"),
    ];
    let roles = ["admin", "agent", "human", "observer", "approver"];
    for (pattern, row) in table {
        for (role, expected) in roles.iter().zip(row.chars()) {
            check(&rbac, role, Action::Subscribe, pattern, expected);
        }
    }
}

#[test]
fn given_combined_roles_when_one_denies_then_deny_wins_and_allows_add_up_otherwise() {
    let rbac = rbac();
    let table = [
        ("agent+human", Action::Publish, SUBJECTS[0], 'A'),
        ("agent+human", Action::Publish, SUBJECTS[2], 'A'),
        ("admin+approver", Action::Publish, SUBJECTS[5], 'D'),
        ("approver+observer", Action::Subscribe, SUBJECTS[5], 'D'),
        (
            "observer+agent",
            Action::Subscribe,
            "ace.comms.agent.>",
            'A',
        ),
        (
            "observer+agent",
            Action::Subscribe,
            "ace.comms.*.*.*.qry.>",
            'D',
        ),
        ("ghost+agent", Action::Publish, SUBJECTS[1], 'A'),
    ];
    for (spec, action, subject, expected) in table {
        check(&rbac, spec, action, subject, expected);
    }
}

#[test]
fn given_a_publish_to_a_pattern_when_authorized_then_even_admin_is_refused() {
    check(&rbac(), "admin", Action::Publish, "ace.comms.>", 'D');
    check(&rbac(), "admin", Action::Publish, "ace.comms.*.x", 'D');
}

#[test]
fn given_the_shipped_file_when_loaded_then_it_defines_the_seed_roles_approver_auditor_and_workflow()
{
    let rbac = rbac();
    let names: Vec<&str> = rbac.role_names().collect();
    assert_eq!(
        names,
        [
            "admin", "agent", "approver", "auditor", "human", "observer", "workflow"
        ]
    );
}

#[test]
fn given_a_workflow_when_authorized_then_it_commands_kernels_and_publishes_their_events_only() {
    let rbac = rbac();
    let allowed = [
        "ace.comms.internal.kernel.avn_core.cmd.escalate_healing.v1",
        "ace.comms.internal.kernel.avn_core.evt.healing_escalation_requested.v1",
    ];
    for subject in allowed {
        check(&rbac, "workflow", Action::Publish, subject, 'A');
    }
    let refused = [
        "ace.comms.internal.agent.planner.cmd.plan.v1",
        "ace.comms.http.service.dashboard.evt.kpi.v1",
        "ace.comms.system.hitl.approval.a1.cmd.decide.v1",
        "ace.comms.system.workflow.w.cmd.manage.v1",
    ];
    for subject in refused {
        check(&rbac, "workflow", Action::Publish, subject, 'D');
    }
    check(
        &rbac,
        "workflow",
        Action::Subscribe,
        "ace.comms.internal.kernel.*.cmd.>",
        'D',
    );
}

#[test]
fn given_an_auditor_when_authorized_then_it_reads_the_ledger_and_nothing_else() {
    let rbac = rbac();
    check(
        &rbac,
        "auditor",
        Action::Subscribe,
        "ace.comms.system.ledger.>",
        'A',
    );
    check(
        &rbac,
        "auditor",
        Action::Subscribe,
        "ace.comms.system.hitl.>",
        'D',
    );
    check(
        &rbac,
        "auditor",
        Action::Subscribe,
        "ace.comms.*.*.*.qry.>",
        'D',
    );
    for subject in SUBJECTS {
        check(&rbac, "auditor", Action::Publish, subject, 'D');
    }
}
