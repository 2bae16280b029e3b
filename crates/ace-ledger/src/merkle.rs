//! The RFC 6962 Merkle tree (§2.1): leaf and node hashes, the tree head at any size, audit
//! (inclusion) paths and consistency proofs, and their verification (the iterative algorithms
//! of RFC 9162 §2.1.3.2 and §2.1.4.2, a different code path from the recursive generation).
//!
//! Two in-memory shapes:
//! - [`Frontier`]: the "compact range" of O(log n) hashes, enough for the root of a growing tree;
//!   the offline verifier streams a ledger through one.
//! - [`Tree`]: every leaf hash *and* every complete aligned subtree hash (about 2 × 32 bytes per
//!   entry). The ledger keeps one so a tree head at any past size and any proof cost O(log² n)
//!   hashes instead of re-reading the entry file.

use crate::hash::Hash;

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The first size of a consistency proof is larger than the second.
    #[error("first tree size {first} is larger than the second {second}")]
    SizesReversed {
        /// The older size.
        first: u64,
        /// The newer size.
        second: u64,
    },
    /// The path has the wrong number of hashes for these sizes.
    #[error("proof has the wrong length ({len} hashes)")]
    WrongLength {
        /// The number of hashes given.
        len: usize,
    },
    /// The recomputed root differs from the expected one.
    #[error("recomputed root {computed} differs from the expected {expected}")]
    RootMismatch {
        /// What the proof leads to.
        computed: Hash,
        /// What it should lead to.
        expected: Hash,
    },
}

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Hash::of(&[&[0x00], leaf])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of(&[&[0x01], &left.0, &right.0])
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Hash::of(&[])
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The O(log n) right edge of a growing tree: one hash per set bit of `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.nodes.push(leaf);
        let mut size = self.size;
        while size & 1 == 1 {
            let right = self.nodes.pop().unwrap_or_default();
            let left = self.nodes.pop().unwrap_or_default();
            self.nodes.push(node_hash(&left, &right));
            size >>= 1;
        }
        self.size += 1;
    }

    /// The tree head of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Every leaf hash and every complete aligned subtree hash: `levels[h][j]` is the root of leaves
/// `j·2^h .. (j+1)·2^h`.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Adds a leaf hash, completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(carry);
            if level.len() % 2 == 1 {
                return;
            }
            carry = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            height += 1;
        }
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(index as usize).copied()
    }

    /// The tree head at `size` (any size up to the current one), or `None` beyond it.
    pub fn root(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.size() => Some(self.subtree(0, s)),
            _ => None,
        }
    }

    /// MTH of leaves `start .. start + len` (`len >= 1`, inside the tree).
    fn subtree(&self, start: u64, len: u64) -> Hash {
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let height = len.trailing_zeros() as usize;
            return self.levels[height][(start / len) as usize];
        }
        let k = split_point(len);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, len - k))
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 §2.1.1),
    /// or `None` if `index >= size` or `size` exceeds the tree.
    pub fn inclusion_path(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Some(path)
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The consistency proof between sizes `first` and `second` (RFC 6962 §2.1.2), or `None` if
    /// `first > second` or `second` exceeds the tree. Empty when `first` is 0 or equal to `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Option<Vec<Hash>> {
        if first > second || second > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with head `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n, mut r) = (index, size - 1, *leaf);
    for p in path {
        if s_n == 0 {
            return Err(ProofError::WrongLength { len: path.len() });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { len: path.len() });
    }
    expect_root(r, root)
}

/// Checks that the tree of `first` leaves with head `first_root` is a prefix of the tree of
/// `second` leaves with head `second_root` (RFC 9162 §2.1.4.2; `first == 0` is consistent
/// with anything given an empty proof).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 || first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        return if first == 0 {
            Ok(())
        } else {
            expect_root(*first_root, second_root)
        };
    }
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        nodes.push(*first_root);
    }
    nodes.extend_from_slice(proof);
    let Some((seed, rest)) = nodes.split_first() else {
        return Err(ProofError::WrongLength { len: proof.len() });
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*seed, *seed);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { len: proof.len() });
    }
    expect_root(f_r, first_root)?;
    expect_root(s_r, second_root)
}

fn expect_root(computed: Hash, expected: &Hash) -> Result<(), ProofError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            computed,
            expected: *expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(n: u64) -> (Tree, Frontier) {
        let (mut tree, mut frontier) = (Tree::new(), Frontier::new());
        for i in 0..n {
            let leaf = leaf_hash(&i.to_be_bytes());
            tree.push(leaf);
            frontier.push(leaf);
        }
        (tree, frontier)
    }

    #[test]
    fn given_any_size_when_rooted_then_tree_and_frontier_agree_at_every_prefix() {
        let (tree, _) = tree_of(40);
        for size in 0..=40 {
            let (_, frontier) = tree_of(size);
            assert_eq!(tree.root(size), Some(frontier.root()), "size {size}");
        }
        assert_eq!(tree.root(41), None);
    }

    #[test]
    fn given_proofs_for_every_pair_when_verified_then_they_pass_and_a_flipped_bit_fails() {
        let (tree, _) = tree_of(20);
        for n in 1..=20 {
            let root = tree.root(n).unwrap();
            for m in 0..n {
                let path = tree.inclusion_path(m, n).unwrap();
                let leaf = tree.leaf(m).unwrap();
                assert_eq!(verify_inclusion(&leaf, m, n, &path, &root), Ok(()));
                let wrong = tree.leaf((m + 1) % n).unwrap();
                assert!(n == 1 || verify_inclusion(&wrong, m, n, &path, &root).is_err());
            }
            for m in 0..=n {
                let proof = tree.consistency_proof(m, n).unwrap();
                let old = tree.root(m).unwrap();
                assert_eq!(verify_consistency(m, n, &old, &root, &proof), Ok(()));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_consistency(m, n, &old, &root, &bad).is_err());
                }
            }
        }
    }

    #[test]
    fn given_out_of_range_arguments_when_proving_then_none_is_returned() {
        let (tree, _) = tree_of(5);
        assert_eq!(tree.inclusion_path(5, 5), None);
        assert_eq!(tree.inclusion_path(0, 6), None);
        assert_eq!(tree.consistency_proof(4, 3), None);
        assert_eq!(
            verify_inclusion(&Hash::ZERO, 3, 3, &[], &Hash::ZERO),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        );
    }
}
