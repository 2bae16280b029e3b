//! `ledger checkpoint|entries|proof`: the server's ledger over HTTP, never taken on trust. A
//! checkpoint counts only once its Ed25519 signature verifies (against `--public-key`, else the
//! served key); a proof counts only once it verifies here, with `ace-ledger`'s RFC 6962 code,
//! against the root of that signed checkpoint. Anything that does not verify exits 1.

use std::io::Write;

use ace_client::LedgerQuery;
use ace_ledger::{Checkpoint, ConsistencyProof, Entry, Hash, InclusionProof};
use anyhow::{Context, Result, bail};
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use serde_json::json;

use crate::args::{CheckpointArgs, EntriesArgs, ProofArgs};
use crate::commands::Outcome;
use crate::commands::client::{Session, refused};
use crate::output::{Failure, Format, NOT_VERIFIED, Table};

/// `GET /api/v1/ledger/key`.
#[derive(Debug, Deserialize)]
struct ServedKey {
    public_key: String,
}

/// `GET /api/v1/ledger/entries`.
#[derive(Debug, Deserialize)]
struct Page {
    entries: Vec<Entry>,
    next_after: Option<u64>,
}

fn public_key(hex_text: &str) -> Result<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut bytes)
        .with_context(|| format!("public key `{hex_text}`: not 32 bytes of hex"))?;
    VerifyingKey::from_bytes(&bytes).context("public key: not a valid Ed25519 point")
}

/// The latest checkpoint, once its signature verifies, and whether the key was `--public-key`
/// (a `NOT_VERIFIED` failure when it does not verify).
fn signed_checkpoint(session: &Session, trusted: Option<&str>) -> Result<(Checkpoint, bool)> {
    let (key, pinned) = match trusted {
        Some(text) => (public_key(text)?, true),
        None => {
            let served = session.block_on(session.client.ledger_key::<ServedKey>());
            (public_key(&served.map_err(refused)?.public_key)?, false)
        }
    };
    let checkpoint: Checkpoint = session
        .block_on(session.client.ledger_checkpoint())
        .map_err(refused)?;
    if let Err(reason) = checkpoint.verify_signature(&key) {
        return Err(Failure::refused(
            NOT_VERIFIED,
            format!(
                "the signature of the checkpoint of size {} does not verify: {reason}",
                checkpoint.size
            ),
        )
        .into());
    }
    Ok((checkpoint, pinned))
}

fn trust(pinned: bool) -> &'static str {
    if pinned {
        "--public-key"
    } else {
        "the key the server serves"
    }
}

pub(super) fn checkpoint(
    session: &Session,
    args: &CheckpointArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let (cp, pinned) = signed_checkpoint(session, args.public_key.as_deref())?;
    let doc = json!({ "checkpoint": cp, "signature_verified": true, "key": trust(pinned) });
    format.print(out, &doc, |out| {
        Ok(writeln!(
            out,
            "checkpoint: {} entries, root {}, chain head {}, at {}\nsigned by key {}: signature verified with {}",
            cp.size,
            cp.root_hash,
            cp.chain_head,
            cp.ts.to_rfc3339(),
            cp.key_id,
            trust(pinned)
        )?)
    })?;
    Ok(Outcome::Success)
}

pub(super) fn entries(
    session: &Session,
    args: &EntriesArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let query = LedgerQuery {
        kind: args.kind.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        after: args.after,
        limit: args.limit,
    };
    let page: Page = session
        .block_on(session.client.ledger_entries(&query))
        .map_err(refused)?;
    let doc = json!({ "entries": page.entries, "next_after": page.next_after });
    format.print(out, &doc, |out| entries_table(&page, out))?;
    Ok(Outcome::Success)
}

/// One row per entry, then where the next page starts.
fn entries_table(page: &Page, out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&[
        "SEQ", "TIME", "KIND", "ACTOR", "SUBJECT", "MESSAGE", "DECISION",
    ]);
    for e in &page.entries {
        table.row(vec![
            e.seq.to_string(),
            e.ts.to_rfc3339(),
            e.kind.to_string(),
            e.actor.clone(),
            e.subject.clone(),
            e.message_id.clone().unwrap_or_else(|| "-".to_owned()),
            e.decision.clone(),
        ]);
    }
    table.write(out)?;
    if let Some(next) = page.next_after {
        writeln!(out, "more: --after {next}")?;
    }
    Ok(())
}

pub(super) fn proof(
    session: &Session,
    args: &ProofArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let (cp, pinned) = signed_checkpoint(session, args.public_key.as_deref())?;
    match (args.seq, args.from, args.to) {
        (Some(seq), _, _) => inclusion(session, args, seq, &cp, pinned, format, out),
        (None, Some(from), Some(to)) => consistency(session, (from, to), &cp, pinned, format, out),
        _ => bail!("name an entry (SEQ) or two tree sizes (--from and --to)"),
    }
}

/// The root at `size`, anchored in the signed checkpoint: the checkpoint's own root, or the
/// `from_root` of a consistency proof from `size` to it that verifies (`NOT_VERIFIED` when
/// none does).
fn anchored_root(session: &Session, size: u64, cp: &Checkpoint) -> Result<Hash> {
    if size == cp.size {
        return Ok(cp.root_hash);
    }
    if size > cp.size {
        return Err(Failure::refused(
            NOT_VERIFIED,
            format!(
                "size {size} is past the latest signed checkpoint ({} entries): no signed root \
                 covers it yet",
                cp.size
            ),
        )
        .hint("ask again once the server has signed a checkpoint that large (one every ledger.checkpoint_interval_ms)")
        .into());
    }
    let link: ConsistencyProof = session
        .block_on(session.client.ledger_consistency_proof(size, cp.size))
        .map_err(refused)?;
    let checked = answers(link.from, link.to, size, cp.size).and_then(|()| {
        link.verify(&link.from_root, &cp.root_hash)
            .map_err(|e| e.to_string())
    });
    if let Err(err) = checked {
        return Err(Failure::refused(
            NOT_VERIFIED,
            format!("the tree of {size} entries is not a prefix of the checkpoint: {err}"),
        )
        .into());
    }
    Ok(link.from_root)
}

fn inclusion(
    session: &Session,
    args: &ProofArgs,
    seq: u64,
    cp: &Checkpoint,
    pinned: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let size = args.size.unwrap_or(cp.size);
    let root = anchored_root(session, size, cp)?;
    let proof: InclusionProof = session
        .block_on(session.client.ledger_inclusion_proof(seq, Some(size)))
        .map_err(refused)?;
    // The proof must answer the question asked and its leaf must be the entry's own content:
    // a valid proof of another entry, or of a leaf nobody can read, proves nothing about `seq`.
    let query = LedgerQuery {
        after: seq.checked_sub(1),
        limit: Some(1),
        ..LedgerQuery::default()
    };
    let page: Page = session
        .block_on(session.client.ledger_entries(&query))
        .map_err(refused)?;
    let verified = answers(proof.seq, proof.tree_size, seq, size)
        .and_then(|()| match page.entries.first() {
            Some(entry) if entry.seq == seq && entry.leaf_hash() == proof.leaf_hash => Ok(()),
            Some(_) | None => Err(format!(
                "the proof's leaf {} is not the leaf of entry {seq} as the server lists it",
                proof.leaf_hash
            )),
        })
        .and_then(|()| proof.verify(&root).map_err(|e| e.to_string()));
    report(
        out,
        format,
        &json!({ "proof": proof, "checkpoint_size": cp.size, "verified": verified.is_ok(), "key": trust(pinned) }),
        &format!(
            "entry {seq} in the tree of {size} entries (root {root}): {}",
            verdict(&verified, cp, pinned)
        ),
        verified.is_ok(),
    )
}

fn consistency(
    session: &Session,
    (from, to): (u64, u64),
    cp: &Checkpoint,
    pinned: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let to_root = anchored_root(session, to, cp)?;
    let proof: ConsistencyProof = session
        .block_on(session.client.ledger_consistency_proof(from, to))
        .map_err(refused)?;
    let verified = answers(proof.from, proof.to, from, to).and_then(|()| {
        proof
            .verify(&proof.from_root, &to_root)
            .map_err(|e| e.to_string())
    });
    report(
        out,
        format,
        &json!({ "proof": proof, "checkpoint_size": cp.size, "verified": verified.is_ok(), "key": trust(pinned) }),
        &format!(
            "the tree of {from} entries (root {}) is a prefix of the tree of {to} (root {to_root}): {}",
            proof.from_root,
            verdict(&verified, cp, pinned)
        ),
        verified.is_ok(),
    )
}

/// Whether a proof about `(got_a, got_b)` answers the question `(want_a, want_b)` asked (entry
/// and tree size, or the two tree sizes).
fn answers(got_a: u64, got_b: u64, want_a: u64, want_b: u64) -> std::result::Result<(), String> {
    if (got_a, got_b) == (want_a, want_b) {
        Ok(())
    } else {
        Err(format!(
            "the server answered for ({got_a}, {got_b}), not the ({want_a}, {want_b}) asked"
        ))
    }
}

fn verdict<E: std::fmt::Display>(
    verified: &std::result::Result<(), E>,
    cp: &Checkpoint,
    pinned: bool,
) -> String {
    match verified {
        Ok(()) => format!(
            "verified against the checkpoint of {} entries signed by {} ({})",
            cp.size,
            cp.key_id,
            trust(pinned)
        ),
        Err(err) => format!("DOES NOT VERIFY: {err}"),
    }
}

/// The proof's report (`doc` for scripts, `line` for people); exit 1 when it does not verify.
fn report(
    out: &mut dyn Write,
    format: Format,
    doc: &serde_json::Value,
    line: &str,
    ok: bool,
) -> Result<Outcome> {
    format.print(out, doc, |out| Ok(writeln!(out, "{line}")?))?;
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Invalid
    })
}
