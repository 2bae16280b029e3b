//! The subject index against the one-pattern matcher of ace-envelope: for any set of patterns and
//! any subject, the index reports exactly the patterns whose `SubjectPattern::matches` is true —
//! after inserts, after removals, at 100k subscriptions, with and without the match cache.

use std::collections::BTreeSet;

use ace_bus::index::{EntryId, SubjectIndex};
use ace_envelope::{Subject, SubjectPattern};
use proptest::prelude::*;

mod workload;

use workload::{pattern, subjects};

/// Everything `index` reports for `subject`, as a sorted set of entry ids.
fn index_matches<T>(index: &SubjectIndex<T>, subject: &Subject) -> BTreeSet<EntryId> {
    let mut found = BTreeSet::new();
    index.matches(subject.as_str(), |id, _| {
        assert!(
            found.insert(id),
            "entry {id:?} reported twice for {subject}"
        );
    });
    found
}

/// What the one-pattern matcher says about the same entries.
fn expected_matches(entries: &[(EntryId, SubjectPattern)], subject: &Subject) -> BTreeSet<EntryId> {
    entries
        .iter()
        .filter(|(_, p)| p.matches(subject.as_str()))
        .map(|(id, _)| *id)
        .collect()
}

/// A small alphabet so random patterns and subjects actually collide.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c-1"), Just("d_2")].prop_map(str::to_owned)
}

fn subject_strategy() -> impl Strategy<Value = Subject> {
    prop::collection::vec(token(), 1..6)
        .prop_map(|t| Subject::new(t.join(".")).expect("valid subject"))
}

fn pattern_strategy() -> impl Strategy<Value = SubjectPattern> {
    let pattern_token = prop_oneof![3 => token(), 1 => Just("*".to_owned())];
    (prop::collection::vec(pattern_token, 0..5), any::<bool>()).prop_filter_map(
        "empty pattern",
        |(mut t, rest)| {
            if rest {
                t.push(">".to_owned());
            }
            (!t.is_empty()).then(|| SubjectPattern::new(t.join(".")).expect("valid pattern"))
        },
    )
}

/// What the cached path (`matching`) reports: the values, which here are the entries' positions.
fn cached_matches(
    index: &SubjectIndex<usize>,
    entries: &[(EntryId, SubjectPattern)],
    subject: &Subject,
) -> BTreeSet<EntryId> {
    let values = index.matching(subject.as_str());
    let found: BTreeSet<_> = values.iter().map(|&i| entries[i].0).collect();
    assert_eq!(
        found.len(),
        values.len(),
        "no value reported twice for {subject}"
    );
    found
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn given_random_patterns_when_matching_any_subject_then_index_equals_pattern_matches(
        patterns in prop::collection::vec(pattern_strategy(), 0..40),
        subjects in prop::collection::vec(subject_strategy(), 1..20),
        removed in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut index = SubjectIndex::with_cache(8);
        let entries: Vec<_> = patterns.iter().enumerate().map(|(i, p)| (index.insert(p, i), p.clone())).collect();
        for subject in &subjects {
            let expected = expected_matches(&entries, subject);
            prop_assert_eq!(&index_matches(&index, subject), &expected);
            prop_assert_eq!(&cached_matches(&index, &entries, subject), &expected);
        }
        let mut kept = Vec::new();
        for ((id, pattern), remove) in entries.iter().zip(&removed) {
            if *remove {
                prop_assert!(index.remove(*id).is_some());
            } else {
                kept.push((*id, pattern.clone()));
            }
        }
        prop_assert_eq!(index.len(), kept.len());
        for subject in &subjects {
            let expected = expected_matches(&kept, subject);
            prop_assert_eq!(&index_matches(&index, subject), &expected);
            prop_assert_eq!(&cached_matches(&index, &entries, subject), &expected);
        }
    }
}

#[test]
fn given_100k_subscriptions_when_inserted_matched_and_removed_then_every_match_is_exact() {
    let mut index = SubjectIndex::new();
    let entries: Vec<_> = (0..100_000)
        .map(pattern)
        .map(|p| (index.insert(&p, ()), p))
        .collect();
    assert_eq!(index.len(), 100_000);
    let from_patterns = (0..100_000).step_by(1_999).map(|i| {
        Subject::new(pattern(i).as_str().replace(['*', '>'], "x")).expect("valid subject")
    });
    let mut matched = 0;
    for subject in from_patterns.chain(subjects(50)) {
        let expected = expected_matches(&entries, &subject);
        matched += expected.len();
        assert_eq!(index_matches(&index, &subject), expected, "for {subject}");
    }
    assert!(
        matched > 100,
        "the probes hit real subscriptions ({matched} matches)"
    );
    // Remove in an order unrelated to insertion, so slots move around inside shared nodes.
    for (id, _) in entries
        .iter()
        .rev()
        .step_by(2)
        .chain(entries.iter().step_by(2))
    {
        assert_eq!(index.remove(*id), Some(()));
    }
    assert!(index.is_empty());
    let probe = Subject::new("ace.comms.agent.llm.a0.evt.e0.v1").expect("valid subject");
    assert!(index_matches(&index, &probe).is_empty());
}
