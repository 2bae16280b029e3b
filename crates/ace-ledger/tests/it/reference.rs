//! An independent RFC 6962 §2.1 implementation: naive recursion over the leaf *data*, written
//! from the RFC text and sharing no code with the crate (only `sha2`). The verifiers rebuild
//! roots by mirroring the PATH/SUBPROOF recursion, unlike the crate's iterative RFC 9162
//! verifiers.

use sha2::{Digest, Sha256};

pub(crate) type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

pub(crate) fn leaf(data: &[u8]) -> H {
    sha(&[&[0u8], data])
}

pub(crate) fn node(left: &H, right: &H) -> H {
    sha(&[&[1u8], left, right])
}

/// The largest power of two smaller than `n` (n > 1).
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
pub(crate) fn mth(d: &[Vec<u8>]) -> H {
    match d.len() {
        0 => sha(&[]),
        1 => leaf(&d[0]),
        n => {
            let k = k_of(n);
            node(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]).
pub(crate) fn path(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
pub(crate) fn proof(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    if m == 0 || m == d.len() {
        return Vec::new();
    }
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<H> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// The root an audit path leads to, mirroring PATH's recursion (None if the length is wrong).
pub(crate) fn root_from_path(leaf_hash: H, m: usize, n: usize, p: &[H]) -> Option<H> {
    if n == 1 {
        return p.is_empty().then_some(leaf_hash);
    }
    let (last, rest) = p.split_last()?;
    let k = k_of(n);
    if m < k {
        Some(node(&root_from_path(leaf_hash, m, k, rest)?, last))
    } else {
        Some(node(last, &root_from_path(leaf_hash, m - k, n - k, rest)?))
    }
}

/// The (old, new) roots a consistency proof leads to, mirroring SUBPROOF's recursion.
pub(crate) fn roots_from_proof(m: usize, n: usize, old_root: H, p: &[H]) -> Option<(H, H)> {
    if m == 0 || m == n {
        return p.is_empty().then_some((old_root, old_root));
    }
    sub_roots(m, n, true, old_root, p)
}

fn sub_roots(m: usize, n: usize, b: bool, old_root: H, p: &[H]) -> Option<(H, H)> {
    if m == n {
        return if b {
            p.is_empty().then_some((old_root, old_root))
        } else {
            (p.len() == 1).then(|| (p[0], p[0]))
        };
    }
    let (last, rest) = p.split_last()?;
    let k = k_of(n);
    if m <= k {
        let (old, new_left) = sub_roots(m, k, b, old_root, rest)?;
        Some((old, node(&new_left, last)))
    } else {
        let (old_right, new_right) = sub_roots(m - k, n - k, false, old_root, rest)?;
        Some((node(last, &old_right), node(last, &new_right)))
    }
}
