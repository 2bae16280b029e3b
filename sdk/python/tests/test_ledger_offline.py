"""The RFC 6962 verifier and the canonical encoding, offline: every audit path of every leaf
of trees of 1 to 33 leaves verifies (paths made by an independent recursive implementation of
RFC 6962 section 2.1.1), and a changed leaf, node, index, size or root does not; numbers and
strings are written as the server writes them."""

from __future__ import annotations

import hashlib

import pytest

from ace_comms import VerificationError
from ace_comms.ledger import (
    canonical_json,
    entry_leaf_hash,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _path(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), leaf to root."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return _path(leaves[:k], m) + [merkle_root(leaves[k:])]
    return _path(leaves[k:], m - k) + [merkle_root(leaves[:k])]


def _subproof(leaves: list[bytes], m: int, whole: bool) -> list[bytes]:
    """RFC 6962 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [merkle_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return _subproof(leaves[:k], m, whole) + [merkle_root(leaves[k:])]
    return _subproof(leaves[k:], m - k, False) + [merkle_root(leaves[:k])]


LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(33)]


def test_given_rfc6962_trees_when_every_path_is_checked_then_each_verifies_and_every_change_fails() -> None:
    assert merkle_root([]) == hashlib.sha256().digest()
    assert merkle_root(LEAVES[:2]) == node_hash(LEAVES[0], LEAVES[1])
    for size in range(1, 34):
        leaves = LEAVES[:size]
        root = merkle_root(leaves)
        for index in range(size):
            path = _path(leaves, index)
            verify_inclusion(leaves[index], index, size, path, root)
            with pytest.raises(VerificationError):
                verify_inclusion(leaf_hash(b"another entry"), index, size, path, root)
            with pytest.raises(VerificationError):
                verify_inclusion(leaves[index], index, size, path, b"\0" * 32)
            if path:
                with pytest.raises(VerificationError):
                    verify_inclusion(leaves[index], index, size, [b"\1" * 32] + path[1:], root)
                with pytest.raises(VerificationError):
                    verify_inclusion(leaves[index], index, size, path[:-1], root)
            with pytest.raises(VerificationError):
                verify_inclusion(leaves[index], size, size, path, root)


def test_given_prefix_trees_when_consistency_is_checked_then_it_verifies_and_a_forged_root_fails() -> None:
    for second in range(1, 34):
        for first in range(1, second + 1):
            old, new = merkle_root(LEAVES[:first]), merkle_root(LEAVES[:second])
            proof = [] if first == second else _subproof(LEAVES[:second], first, True)
            verify_consistency(first, second, old, new, proof)
            if first < second:
                with pytest.raises(VerificationError):
                    verify_consistency(first, second, b"\2" * 32, new, proof)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": [True, None, "é\n\"\u0001"]}, '{"a":[true,null,"é\\n\\"\\u0001"],"b":1}'),
        ({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'),  # UTF-16 order
        (0.95, "0.95"),
        (1.0, "1.0"),
        (1e16, "1e16"),
        (1e15, "1000000000000000.0"),
        (0.00001, "0.00001"),
        (0.000001, "1e-6"),
        (1.5e-7, "1.5e-7"),
        (-2.5e20, "-2.5e20"),
        (123456.789, "123456.789"),
    ],
)
def test_given_json_values_when_canonicalized_then_the_bytes_are_serde_jsons(value: object, text: str) -> None:
    assert canonical_json(value) == text.encode()


def test_given_an_entry_when_hashed_then_its_leaf_is_the_canonical_nine_fields() -> None:
    # The vector of ace-ledger's own unit test of Entry::leaf_bytes.
    entry = {
        "seq": 0, "ts": "1970-01-01T00:00:00Z", "kind": "accepted", "actor": "alice",
        "subject": "ace.comms.x", "message_id": "m-1", "content_sha256": None, "decision": "allow",
        "details": {"b": 2, "a": [1, 2.5]}, "chain_hash": "ignored",
    }  # fmt: skip
    leaf = (
        b'{"actor":"alice","content_sha256":null,"decision":"allow","details":{"a":[1,2.5],"b":2},'
        b'"kind":"accepted","message_id":"m-1","seq":0,"subject":"ace.comms.x","ts":"1970-01-01T00:00:00Z"}'
    )
    assert entry_leaf_hash(entry) == hashlib.sha256(b"\0" + leaf).digest()
