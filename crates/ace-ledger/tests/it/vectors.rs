//! The RFC 6962 test vectors published with Certificate Transparency (the eight leaves, the tree
//! heads at sizes 0..=8, and the inclusion and consistency proofs of the CT test suites), run
//! through the crate's tree and verifiers and through the test's reference implementation.

use ace_ledger::Hash;
use ace_ledger::merkle::{Tree, leaf_hash, verify_consistency, verify_inclusion};

use crate::reference;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path).
const INCLUSION: [(u64, u64, &[&str]); 2] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (first size, second size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 2] = [
    (
        2,
        8,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(text: &str) -> Hash {
    Hash::from_hex(text).unwrap()
}

fn data() -> Vec<Vec<u8>> {
    LEAVES.iter().map(|l| hex::decode(l).unwrap()).collect()
}

fn tree() -> Tree {
    let mut tree = Tree::new();
    for leaf in data() {
        tree.push(leaf_hash(&leaf));
    }
    tree
}

#[test]
fn given_the_ct_leaves_when_rooted_at_every_size_then_the_published_heads_come_out() {
    let (tree, data) = (tree(), data());
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root(size as u64), Some(h(root)), "crate, size {size}");
        assert_eq!(
            hex::encode(reference::mth(&data[..size])),
            *root,
            "reference, size {size}"
        );
    }
}

#[test]
fn given_the_ct_inclusion_vectors_when_generated_and_verified_then_they_match() {
    let tree = tree();
    for (index, size, path) in INCLUSION {
        let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(tree.inclusion_path(index, size), Some(expected.clone()));
        let leaf = tree.leaf(index).unwrap();
        assert_eq!(
            verify_inclusion(&leaf, index, size, &expected, &h(ROOTS[size as usize])),
            Ok(())
        );
    }
}

#[test]
fn given_the_ct_consistency_vectors_when_generated_and_verified_then_they_match() {
    let tree = tree();
    for (first, second, proof) in CONSISTENCY {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            tree.consistency_proof(first, second),
            Some(expected.clone())
        );
        let (old, new) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
        assert_eq!(
            verify_consistency(first, second, &old, &new, &expected),
            Ok(())
        );
    }
}
