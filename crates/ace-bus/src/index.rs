//! The subject index: which subscriptions match a subject, fast with 100k of them.
//!
//! A token trie in the manner of NATS's sublist. Each level keeps its literal children (in a
//! short vector, or a hash map once a level is wide), one `*` child, and the entries whose pattern
//! ends there, exactly or with `>`. Matching a subject follows at most two branches per token (the
//! literal child and `*`, where they exist), so its cost grows with the wildcards actually
//! subscribed along the subject's path, not with the number of subscriptions. Each entry lives in
//! exactly one node, so a subject reports an entry at most once.
//!
//! Patterns are the validated [`SubjectPattern`] of ace-envelope: this module never parses the
//! grammar, it only splits an already valid pattern on `.`. Subjects are matched as text (an
//! envelope carries its subject as a `String`, checked once at ingress), with exactly the answer
//! [`SubjectPattern::matches`] gives for every pattern in the index, valid subject or not.
//!
//! An optional bounded match cache (subject → matching values, as NATS keeps) answers repeated
//! subjects without walking the trie. Insert and remove evict exactly the cached subjects the
//! changed pattern matches, so the cache is never stale. Whether it pays is measured in
//! `benches/index.rs` (see BENCHMARKS.md): it turns a walk into one hash lookup, but costs a
//! lock and a copy of the result on a miss.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ace_envelope::SubjectPattern;
use parking_lot::RwLock;

/// Identifies one entry of a [`SubjectIndex`]; never reused within one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u64);

impl EntryId {
    /// The id as a plain number (stable for the life of the entry).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Maps subject patterns to values and answers "which values match this subject".
///
/// `insert`/`remove` take `&mut self`; matching takes `&self`, so a reader-writer lock around the
/// index lets any number of publishers match concurrently.
pub struct SubjectIndex<T> {
    root: Node<T>,
    /// Where each entry lives: its pattern (to walk back down on removal) and its slot in the
    /// node's vector (so removal is a `swap_remove`, O(1) even with 100k entries on one node).
    entries: HashMap<EntryId, Location>,
    next_id: u64,
    /// Behind its own lock so matching through it needs only `&self`; readers share it.
    cache: Option<RwLock<MatchCache<T>>>,
}

struct Location {
    pattern: SubjectPattern,
    slot: usize,
}

struct Slot<T> {
    id: EntryId,
    value: T,
}

struct Node<T> {
    literals: Children<T>,
    star: Option<Box<Node<T>>>,
    /// Entries whose pattern ends here with `>`: they match when at least one token remains.
    rest: Vec<Slot<T>>,
    /// Entries whose pattern ends exactly at this node.
    exact: Vec<Slot<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            literals: Children::Few(Vec::new()),
            star: None,
            rest: Vec::new(),
            exact: Vec::new(),
        }
    }
}

/// Splits the first token off an already validated subject or pattern.
fn split_token(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (rest, None),
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty()
            && self.star.is_none()
            && self.rest.is_empty()
            && self.exact.is_empty()
    }

    /// Walks down `pattern`, creating nodes, and returns the vector the entry belongs in.
    fn slots_for(&mut self, pattern: Option<&str>) -> &mut Vec<Slot<T>> {
        let Some(pattern) = pattern else {
            return &mut self.exact;
        };
        let (head, tail) = split_token(pattern);
        match head {
            ">" => &mut self.rest,
            "*" => self.star.get_or_insert_with(Box::default).slots_for(tail),
            literal => self.literals.get_or_insert(literal).slots_for(tail),
        }
    }

    /// Removes the entry at `slot` under `pattern`, pruning nodes left empty. Returns the removed
    /// slot and the id of the entry that `swap_remove` moved into its place, if any.
    fn take(&mut self, pattern: Option<&str>, slot: usize) -> (Slot<T>, Option<EntryId>) {
        let Some(pattern) = pattern else {
            return swap_take(&mut self.exact, slot);
        };
        let (head, tail) = split_token(pattern);
        match head {
            ">" => swap_take(&mut self.rest, slot),
            "*" => {
                let child = self
                    .star
                    .as_mut()
                    .expect("index invariant: entry's `*` node exists");
                let taken = child.take(tail, slot);
                if child.is_empty() {
                    self.star = None;
                }
                taken
            }
            literal => {
                let child = self
                    .literals
                    .get_mut(literal)
                    .expect("index invariant: entry's node exists");
                let taken = child.take(tail, slot);
                if child.is_empty() {
                    self.literals.remove(literal);
                }
                taken
            }
        }
    }

    /// Calls `f` for every entry matching the remaining subject tokens (`None`: none left).
    fn visit<'a>(&'a self, subject: Option<&str>, f: &mut impl FnMut(EntryId, &'a T)) {
        let Some(subject) = subject else {
            self.exact.iter().for_each(|s| f(s.id, &s.value));
            return;
        };
        self.rest.iter().for_each(|s| f(s.id, &s.value));
        let (head, tail) = split_token(subject);
        if let Some(child) = self.literals.get(head) {
            child.visit(tail, f);
        }
        if let Some(star) = &self.star {
            star.visit(tail, f);
        }
    }

    fn for_each<'a>(&'a self, f: &mut impl FnMut(EntryId, &'a T)) {
        self.exact
            .iter()
            .chain(&self.rest)
            .for_each(|s| f(s.id, &s.value));
        self.literals.for_each(|child| child.for_each(f));
        if let Some(star) = &self.star {
            star.for_each(f);
        }
    }
}

/// The literal children of a node. Deep in the ACE hierarchy most nodes have one child (`evt`,
/// `v1`), and a hash map allocates several buckets plus control bytes even for one: a short vector
/// scanned linearly holds a few children in a fraction of the memory and finds them as fast. Past
/// [`FEW`] children the node switches to a hash map.
enum Children<T> {
    Few(Vec<(Box<str>, Node<T>)>),
    /// Boxed so that the common `Few` case keeps every node small (a map is 40 bytes inline).
    #[allow(
        clippy::box_collection,
        reason = "keeps the far more common `Few` variant small"
    )]
    Many(Box<HashMap<Box<str>, Node<T>, foldhash::fast::RandomState>>),
}

/// Most children a node keeps in a vector before it switches to a hash map.
const FEW: usize = 8;

impl<T> Children<T> {
    fn is_empty(&self) -> bool {
        match self {
            Children::Few(few) => few.is_empty(),
            Children::Many(many) => many.is_empty(),
        }
    }

    fn get(&self, token: &str) -> Option<&Node<T>> {
        match self {
            Children::Few(few) => few
                .iter()
                .find(|(t, _)| &**t == token)
                .map(|(_, node)| node),
            Children::Many(many) => many.get(token),
        }
    }

    fn get_mut(&mut self, token: &str) -> Option<&mut Node<T>> {
        match self {
            Children::Few(few) => few
                .iter_mut()
                .find(|(t, _)| &**t == token)
                .map(|(_, node)| node),
            Children::Many(many) => many.get_mut(token),
        }
    }

    fn get_or_insert(&mut self, token: &str) -> &mut Node<T> {
        if let Children::Few(few) = self
            && few.len() >= FEW
            && !few.iter().any(|(t, _)| &**t == token)
        {
            *self = Children::Many(Box::new(std::mem::take(few).into_iter().collect()));
        }
        match self {
            Children::Few(few) => match few.iter().position(|(t, _)| &**t == token) {
                Some(at) => &mut few[at].1,
                None => {
                    push_compact(few, (token.into(), Node::default()));
                    &mut few.last_mut().expect("pushed just above").1
                }
            },
            // Look up before `entry` so an existing token costs no allocation.
            Children::Many(many) => {
                if !many.contains_key(token) {
                    many.insert(token.into(), Node::default());
                }
                many.get_mut(token).expect("inserted just above")
            }
        }
    }

    fn remove(&mut self, token: &str) {
        match self {
            Children::Few(few) => few.retain(|(t, _)| &**t != token),
            Children::Many(many) => {
                many.remove(token);
            }
        }
    }

    fn for_each<'a>(&'a self, f: impl FnMut(&'a Node<T>)) {
        match self {
            Children::Few(few) => few.iter().map(|(_, node)| node).for_each(f),
            Children::Many(many) => many.values().for_each(f),
        }
    }
}

/// Pushes without over-allocating small vectors: most vectors in the trie hold one item, and
/// `Vec`'s first growth reserves four. Past [`FEW`] items it grows by doubling again.
fn push_compact<E>(items: &mut Vec<E>, item: E) {
    if items.len() == items.capacity() && items.len() < FEW {
        items.reserve_exact(1);
    }
    items.push(item);
}

fn swap_take<T>(slots: &mut Vec<Slot<T>>, slot: usize) -> (Slot<T>, Option<EntryId>) {
    let taken = slots.swap_remove(slot);
    (taken, slots.get(slot).map(|moved| moved.id))
}

/// Subject → matching values, bounded; evicts the oldest subject when full (first in, first out:
/// O(1), where picking "any" key of a hash map degrades into a scan once its front is empty).
struct MatchCache<T> {
    capacity: usize,
    results: HashMap<Arc<str>, Arc<[T]>>,
    /// Exactly the keys of `results`, oldest first.
    order: VecDeque<Arc<str>>,
}

impl<T> MatchCache<T> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            results: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn forget_matches_of(&mut self, pattern: &SubjectPattern) {
        self.results.retain(|subject, _| !pattern.matches(subject));
        let results = &self.results;
        self.order.retain(|subject| results.contains_key(subject));
    }

    fn store(&mut self, subject: &str, values: Arc<[T]>) {
        // Two readers that missed together both come here; the first one stores.
        if self.results.contains_key(subject) {
            return;
        }
        if self.results.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.results.remove(&oldest);
        }
        let subject: Arc<str> = subject.into();
        self.order.push_back(Arc::clone(&subject));
        self.results.insert(subject, values);
    }
}

impl<T> Default for SubjectIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SubjectIndex<T> {
    /// An empty index without a match cache.
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            entries: HashMap::new(),
            next_id: 0,
            cache: None,
        }
    }

    /// An empty index whose [`SubjectIndex::matching`] remembers up to `capacity` subjects.
    pub fn with_cache(capacity: usize) -> Self {
        let cache = (capacity > 0).then(|| RwLock::new(MatchCache::new(capacity)));
        Self {
            cache,
            ..Self::new()
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `value` under `pattern` and returns its id (the key for [`SubjectIndex::remove`]).
    pub fn insert(&mut self, pattern: &SubjectPattern, value: T) -> EntryId {
        let id = EntryId(self.next_id);
        self.next_id += 1;
        let slots = self.root.slots_for(Some(pattern.as_str()));
        push_compact(slots, Slot { id, value });
        let slot = slots.len() - 1;
        self.forget_cached(pattern);
        self.entries.insert(
            id,
            Location {
                pattern: pattern.clone(),
                slot,
            },
        );
        id
    }

    /// Removes the entry `id` and returns its value; `None` if it is not (or no longer) here.
    pub fn remove(&mut self, id: EntryId) -> Option<T> {
        let location = self.entries.remove(&id)?;
        let (taken, moved) = self
            .root
            .take(Some(location.pattern.as_str()), location.slot);
        if let Some(moved) = moved
            && let Some(moved) = self.entries.get_mut(&moved)
        {
            moved.slot = location.slot;
        }
        self.forget_cached(&location.pattern);
        Some(taken.value)
    }

    /// The pattern entry `id` was inserted under.
    pub fn pattern(&self, id: EntryId) -> Option<&SubjectPattern> {
        self.entries.get(&id).map(|location| &location.pattern)
    }

    /// Calls `f` once for every entry whose pattern matches `subject` (no cache, no allocation).
    pub fn matches<'a>(&'a self, subject: &str, mut f: impl FnMut(EntryId, &'a T)) {
        self.root.visit(Some(subject), &mut f);
    }

    /// True when at least one entry matches `subject`.
    pub fn has_match(&self, subject: &str) -> bool {
        let mut found = false;
        self.matches(subject, |_, _| found = true);
        found
    }

    /// Calls `f` for every entry, in no particular order.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(EntryId, &'a T)) {
        self.root.for_each(&mut f);
    }

    fn forget_cached(&mut self, pattern: &SubjectPattern) {
        if let Some(cache) = &mut self.cache {
            cache.get_mut().forget_matches_of(pattern);
        }
    }
}

impl<T: Clone> SubjectIndex<T> {
    /// The values matching `subject`, through the match cache when the index has one.
    pub fn matching(&self, subject: &str) -> Arc<[T]> {
        let Some(cache) = &self.cache else {
            return self.collect(subject);
        };
        if let Some(hit) = cache.read().results.get(subject) {
            return Arc::clone(hit);
        }
        let values = self.collect(subject);
        cache.write().store(subject, Arc::clone(&values));
        values
    }

    fn collect(&self, subject: &str) -> Arc<[T]> {
        let mut values = Vec::new();
        self.matches(subject, |_, value| values.push(value.clone()));
        values.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> SubjectPattern {
        SubjectPattern::new(p).expect("valid pattern")
    }

    fn matched(index: &SubjectIndex<&'static str>, s: &str) -> Vec<&'static str> {
        let mut found = Vec::new();
        index.matches(s, |_, v| found.push(*v));
        found.sort_unstable();
        found
    }

    #[test]
    fn given_literal_star_and_rest_patterns_when_matching_then_each_follows_its_wildcard() {
        let mut index = SubjectIndex::new();
        index.insert(&pattern("a.b.c"), "lit");
        index.insert(&pattern("a.*.c"), "star");
        index.insert(&pattern("a.>"), "rest");
        index.insert(&pattern(">"), "all");
        assert_eq!(matched(&index, "a.b.c"), ["all", "lit", "rest", "star"]);
        assert_eq!(matched(&index, "a.x.c"), ["all", "rest", "star"]);
        assert_eq!(matched(&index, "a.b"), ["all", "rest"]);
        assert_eq!(matched(&index, "a"), ["all"]);
        assert_eq!(matched(&index, "b.b.c"), ["all"]);
    }

    #[test]
    fn given_rest_wildcard_when_subject_has_no_more_tokens_then_it_does_not_match() {
        let mut index = SubjectIndex::new();
        index.insert(&pattern("a.b.>"), "rest");
        assert!(matched(&index, "a.b").is_empty());
        assert_eq!(matched(&index, "a.b.c.d.e"), ["rest"]);
    }

    #[test]
    fn given_entries_on_one_node_when_removing_one_then_the_others_stay_findable_and_removable() {
        let mut index = SubjectIndex::new();
        let ids: Vec<_> = ["x", "y", "z"]
            .into_iter()
            .map(|v| index.insert(&pattern("a.*"), v))
            .collect();
        assert_eq!(index.remove(ids[0]), Some("x"));
        assert_eq!(index.remove(ids[0]), None);
        assert_eq!(matched(&index, "a.q"), ["y", "z"]);
        assert_eq!(index.remove(ids[2]), Some("z"));
        assert_eq!(index.remove(ids[1]), Some("y"));
        assert!(index.is_empty());
        assert!(index.root.is_empty(), "empty nodes are pruned");
    }

    #[test]
    fn given_a_cached_subject_when_a_matching_pattern_is_inserted_or_removed_then_the_cache_follows()
     {
        let mut index = SubjectIndex::with_cache(8);
        index.insert(&pattern("a.b"), 1);
        assert_eq!(&*index.matching("a.b"), [1]);
        let id = index.insert(&pattern("a.*"), 2);
        let mut now: Vec<_> = index.matching("a.b").to_vec();
        now.sort_unstable();
        assert_eq!(now, [1, 2]);
        index.remove(id);
        assert_eq!(&*index.matching("a.b"), [1]);
    }

    #[test]
    fn given_a_full_cache_when_storing_another_subject_then_it_stays_within_capacity() {
        let mut index = SubjectIndex::with_cache(2);
        index.insert(&pattern(">"), 0);
        for s in ["a", "b", "c", "d"] {
            assert_eq!(&*index.matching(s), [0]);
        }
        let cache = index.cache.as_mut().map(|c| c.get_mut().results.len());
        assert_eq!(cache, Some(2));
    }
}
