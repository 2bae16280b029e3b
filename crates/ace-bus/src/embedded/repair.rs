//! Repairing a damaged stream of the embedded engine (`Bus::repair_stream`).
//!
//! The dry run reads the stream's recovered state (`Log::repair_plan`, given what the engine
//! knows beyond the log: a record whose header block does not decode, the consumers' ack
//! floors) and changes nothing. With `accept_loss`, the stream is taken offline the way
//! `update_stream` does it — its writer stops, publishes racing the repair wait and are routed
//! to the repaired stream — its log is repaired in place (`Log::repair`: cut to the last intact
//! record, the cut moved under `streams/<name>/lost/`, the next sequence above the high-water
//! mark; a halted log is reopened first), and a new `Stream` over the same log takes over the
//! consumers, their ack floors and pending deliveries as they were. A delivery of a message the
//! repair gave up is forgotten when a fetch reaches it, as one dropped by limits is.

use std::sync::Arc;

use ace_log::{LogError, RecoveryReport, RepairOptions, RepairPlan, Repaired};

use super::Inner;
use super::stream::Stream;
use crate::bus::{ConsumerFloor, LostSegment, SeqRange, StreamRepair, StreamState};
use crate::error::BusError;

impl Inner {
    pub(super) async fn repair_stream(
        &self,
        name: &str,
        accept_loss: bool,
    ) -> Result<StreamRepair, BusError> {
        let _admin = self.admin.lock().await;
        let old = self.stream(name)?;
        let options = old.repair_options();
        let mut answer = survey(&old, &options, accept_loss)?;
        if answer.state == StreamState::Ok {
            answer.message = format!("nothing to repair: stream `{name}` is ok");
            return Ok(answer);
        }
        if !accept_loss {
            answer.message = dry_run_message(&answer);
            return Ok(answer);
        }
        old.shutdown();
        let log = Arc::clone(&old.log);
        let repaired = tokio::task::spawn_blocking(move || log.repair(&options))
            .await
            .map_err(|e| BusError::Storage {
                stream: name.to_owned(),
                reason: format!("the repair stopped: {e}"),
            })?;
        // Whatever the repair did, a stream over the log serves again, with its consumers.
        let report = repaired.as_ref().map(|r| r.report.clone());
        let fresh = self.restart(&old, &report.unwrap_or_default())?;
        let repaired = repaired.map_err(|source| log_failed(name, source))?;
        finish(&mut answer, &fresh, &repaired, &self.stream_dir(name));
        Ok(answer)
    }

    /// A new stream over `old`'s (repaired) log, adopting its consumers, in its place.
    fn restart(&self, old: &Stream, report: &RecoveryReport) -> Result<Arc<Stream>, BusError> {
        let fresh = Stream::start(
            &self.stream_dir(&old.name),
            Arc::clone(&old.log),
            report,
            old.config(),
            &self.config,
            &self.health,
        )?;
        fresh.adopt(old);
        self.streams.write().insert(old.name.clone(), fresh.clone());
        fresh.notify.notify_waiters();
        Ok(fresh)
    }
}

/// The dry run: the stream's state and what a repair with `options` keeps and gives up.
fn survey(
    stream: &Stream,
    options: &RepairOptions,
    accept_loss: bool,
) -> Result<StreamRepair, BusError> {
    let (state, damage) = stream.health();
    let plan = stream
        .log
        .repair_plan(options)
        .map_err(|source| log_failed(&stream.name, source))?;
    let mut answer = StreamRepair {
        stream: stream.name.clone(),
        dry_run: !accept_loss,
        repaired: false,
        state,
        damage,
        intact: None,
        lost: None,
        lost_bytes: 0,
        segments: Vec::new(),
        high_water: plan.high_water,
        next_seq: plan.next_seq,
        consumers: Vec::new(),
        moved_to: None,
        state_after: state,
        message: String::new(),
    };
    describe(&mut answer, stream, &plan);
    Ok(answer)
}

/// Fills what `plan` keeps and gives up, and the consumers whose ack floor it gives up.
fn describe(answer: &mut StreamRepair, stream: &Stream, plan: &RepairPlan) {
    answer.intact = plan.intact.map(range);
    answer.lost = plan.lost.map(range);
    answer.lost_bytes = plan.lost_bytes;
    answer.high_water = plan.high_water;
    answer.next_seq = plan.next_seq;
    answer.segments = plan
        .cuts
        .iter()
        .map(|c| LostSegment {
            segment: c
                .segment
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            offset: c.offset,
            bytes: c.bytes,
            whole: c.whole,
        })
        .collect();
    answer.consumers = match plan.lost {
        None => Vec::new(),
        Some((first, last)) => stream
            .consumers
            .read()
            .values()
            .map(|c| ConsumerFloor {
                consumer: c.name.clone(),
                ack_floor: c.core.lock().ack_floor(),
            })
            .filter(|c| (first..=last).contains(&c.ack_floor))
            .collect(),
    };
}

/// The answer after the repair: what was really cut (a halted log's reopen may have found
/// more, or nothing), where it went, the state now (the consumers were adopted as they were).
fn finish(answer: &mut StreamRepair, fresh: &Stream, repaired: &Repaired, dir: &std::path::Path) {
    describe(answer, fresh, &repaired.plan);
    answer.repaired = true;
    answer.moved_to = repaired.moved_to.as_ref().map(|p| {
        p.strip_prefix(dir)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    });
    answer.state_after = fresh.health().0;
    let lost = match (&answer.lost, &answer.moved_to) {
        (Some(r), Some(to)) => format!(
            "sequences {} to {} given up ({} bytes moved to {to})",
            r.first, r.last, answer.lost_bytes
        ),
        (Some(r), None) => format!("sequences {} to {} given up", r.first, r.last),
        (None, _) => "nothing lost (the log was reopened)".to_owned(),
    };
    answer.message = format!(
        "repaired: {lost}; the stream is {}, the next sequence is {}",
        answer.state_after.as_str(),
        answer.next_seq
    );
}

fn dry_run_message(answer: &StreamRepair) -> String {
    if answer.state == StreamState::Halted && answer.lost.is_none() {
        return "dry run, nothing changed: the stream is halted; accept_loss reopens its log and \
                recovery decides what survived"
            .to_owned();
    }
    let keep = answer.intact.map_or_else(
        || "keeps no record".to_owned(),
        |r| format!("keeps {} to {}", r.first, r.last),
    );
    let lost = answer.lost.map_or_else(
        || "gives up nothing".to_owned(),
        |r| {
            format!(
                "gives up sequences {} to {} ({} bytes in {} segment file(s))",
                r.first,
                r.last,
                answer.lost_bytes,
                answer.segments.len()
            )
        },
    );
    format!(
        "dry run, nothing changed: accept_loss {lost} and {keep}; the next sequence would be {}",
        answer.next_seq
    )
}

fn range((first, last): (u64, u64)) -> SeqRange {
    SeqRange { first, last }
}

fn log_failed(stream: &str, source: LogError) -> BusError {
    BusError::Log {
        stream: stream.to_owned(),
        source,
    }
}
