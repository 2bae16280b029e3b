"""Client-side checks of the server's ledger: RFC 6962 Merkle proofs, the exact bytes of an
entry, and the Ed25519 signature of a checkpoint — so a proof the server hands out is believed
only once it verifies here.

The encoding is the server's (stable; changing it breaks every ledger):

- leaf bytes of an entry: the canonical JSON (object keys sorted by UTF-16 code units, no
  whitespace, strings and numbers as ``serde_json`` writes them) of its nine fields ``seq``,
  ``ts``, ``kind``, ``actor``, ``subject``, ``message_id``, ``content_sha256``, ``decision``,
  ``details`` — the entry as listed, without ``chain_hash``;
- leaf hash ``SHA-256(0x00 || leaf bytes)``, node hash ``SHA-256(0x01 || left || right)``, tree
  heads per RFC 6962 section 2.1, the empty tree's ``SHA-256()``;
- chain hash ``h_n = SHA-256(h_{n-1} || leaf bytes)``, 32 zero bytes before entry 0;
- a checkpoint ``{size, root_hash, chain_head, ts, key_id, signature}`` is signed (Ed25519, hex)
  over ``ace-ledger/checkpoint/v1\\n`` + the canonical JSON of every field but ``signature``;
  ``key_id`` is the first 16 hex digits of SHA-256 of the public key.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import VerificationError

CHECKPOINT_DOMAIN = b"ace-ledger/checkpoint/v1\n"
LEAF_FIELDS = (
    "seq", "ts", "kind", "actor", "subject", "message_id", "content_sha256", "decision", "details",
)  # fmt: skip


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value``, as the server writes them."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be"))):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, float) and not isinstance(value, bool):
        out.append(_float_text(value))
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def _float_text(value: float) -> str:
    """A float as ``serde_json`` (ryu) writes it: the shortest round-trip digits, plain
    notation while the decimal point falls within ``-5 < point <= 16``, else ``1.5e-7``."""
    if not math.isfinite(value):
        raise ValueError(f"{value} has no JSON form")
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, _, exponent = f"{abs(value):.17e}".partition("e")
    # the shortest digits that read back as the same float
    for precision in range(1, 18):
        text = f"{abs(value):.{precision - 1}e}"
        if float(text) == abs(value):
            digits, _, exponent = text.partition("e")
            break
    mantissa = digits.replace(".", "")
    point = int(exponent) + 1  # where the decimal point falls after the first digit
    length = len(mantissa)
    if 0 <= point - length and point <= 16:
        return f"{sign}{mantissa}{'0' * (point - length)}.0"
    if 0 < point <= 16:
        return f"{sign}{mantissa[:point]}.{mantissa[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{mantissa}"
    exp = point - 1
    if length == 1:
        return f"{sign}{mantissa}e{exp}"
    return f"{sign}{mantissa[0]}.{mantissa[1:]}e{exp}"


def sha256(*parts: bytes) -> bytes:
    """SHA-256 of the concatenation of ``parts``."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash ``SHA-256(0x00 || leaf)``."""
    return sha256(b"\x00", leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 node hash ``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01", left, right)


def entry_leaf_bytes(entry: dict[str, Any]) -> bytes:
    """The leaf bytes of a ledger entry as ``GET /api/v1/ledger/entries`` lists it."""
    missing = [name for name in LEAF_FIELDS if name not in entry]
    if missing:
        raise VerificationError(f"the entry lacks {', '.join(missing)}")
    return canonical_json({name: entry[name] for name in LEAF_FIELDS})


def entry_leaf_hash(entry: dict[str, Any]) -> bytes:
    """The Merkle leaf hash of a ledger entry."""
    return leaf_hash(entry_leaf_bytes(entry))


def chain_hash(previous: bytes, entry: dict[str, Any]) -> bytes:
    """The chain hash of ``entry`` after the entry whose chain hash is ``previous``."""
    return sha256(previous, entry_leaf_bytes(entry))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 tree head of the leaf hashes ``leaves`` (the empty tree's is ``SHA-256()``)."""
    if not leaves:
        return sha256()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two below the size
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Checks that ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose head is
    ``root`` (RFC 9162 section 2.1.3.2); raises :class:`VerificationError` otherwise."""
    if index >= size or index < 0:
        raise VerificationError(f"leaf {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationError(f"the audit path is too long ({len(path)} nodes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"the audit path is too short ({len(path)} nodes)")
    if r != root:
        raise VerificationError(f"the audit path leads to {r.hex()}, not the root {root.hex()}")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Checks that the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves
    (RFC 9162 section 2.1.4.2); raises :class:`VerificationError` otherwise."""
    if first > second:
        raise VerificationError(f"sizes reversed: {first} > {second}")
    if first == 0 or first == second:
        if proof:
            raise VerificationError("a proof between equal or empty trees is empty")
        if first and first_root != second_root:
            raise VerificationError("equal sizes with different roots")
        return
    nodes = ([first_root] if first & (first - 1) == 0 else []) + list(proof)
    if not nodes:
        raise VerificationError("the consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise VerificationError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("the consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise VerificationError("the consistency proof does not lead to both roots")


def key_id(public_key: bytes) -> str:
    """The ``key_id`` of an Ed25519 public key."""
    return sha256(public_key).hex()[:16]


def checkpoint_signed_bytes(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers."""
    body = {name: checkpoint[name] for name in ("chain_head", "key_id", "root_hash", "size", "ts")}
    return CHECKPOINT_DOMAIN + canonical_json(body)


def verify_checkpoint(checkpoint: dict[str, Any], public_key_hex: str) -> None:
    """Checks a checkpoint's key id and Ed25519 signature against ``public_key_hex``; raises
    :class:`VerificationError` naming what failed."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = bytes.fromhex(public_key_hex.strip())
        key = Ed25519PublicKey.from_public_bytes(raw)
        signature = bytes.fromhex(checkpoint["signature"])
    except (ValueError, KeyError) as err:
        raise VerificationError(f"the key or the signature is not hex of the right size: {err}")
    if checkpoint.get("key_id") != key_id(raw):
        raise VerificationError(
            f"key_id {checkpoint.get('key_id')!r} is not the key {key_id(raw)!r}"
        )
    try:
        key.verify(signature, checkpoint_signed_bytes(checkpoint))
    except InvalidSignature:
        raise VerificationError(
            f"the signature of the checkpoint of size {checkpoint.get('size')} does not verify"
        ) from None


@dataclass(frozen=True)
class VerifiedInclusion:
    """An entry proven to be in a signed checkpoint: the entry, the proof and the checkpoint."""

    entry: dict[str, Any]
    proof: dict[str, Any]
    checkpoint: dict[str, Any]


def verify_entry_in_checkpoint(
    entry: dict[str, Any], proof: dict[str, Any], checkpoint: dict[str, Any]
) -> VerifiedInclusion:
    """Checks that ``proof`` proves this very ``entry`` (its leaf hash computed here from its
    content) is in the tree of the (already signature-checked) ``checkpoint``."""
    seq = entry.get("seq")
    if not isinstance(seq, int):
        raise VerificationError(f"the entry's seq {seq!r} is not an integer")
    if proof.get("seq") != seq or proof.get("tree_size") != checkpoint.get("size"):
        raise VerificationError(
            f"the proof is about entry {proof.get('seq')} in a tree of {proof.get('tree_size')}, "
            f"not entry {seq} in the checkpoint's {checkpoint.get('size')}"
        )
    leaf = entry_leaf_hash(entry)
    if leaf.hex() != proof.get("leaf_hash"):
        raise VerificationError(
            f"entry {seq} hashes to {leaf.hex()}, the proof's leaf is {proof.get('leaf_hash')}"
        )
    path = [bytes.fromhex(node) for node in proof.get("path", [])]
    verify_inclusion(leaf, seq, int(checkpoint["size"]), path, bytes.fromhex(checkpoint["root_hash"]))
    return VerifiedInclusion(entry=entry, proof=proof, checkpoint=checkpoint)
