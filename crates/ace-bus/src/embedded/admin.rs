//! Stream and consumer management of the embedded engine: create, update, delete, describe;
//! validation of names, subjects and options; the overlap rules (streams never share a subject,
//! work-queue consumers never share a filter); where a new consumer starts.

use ace_envelope::{Subject, SubjectPattern};

use super::Inner;
use super::consumer::ConsumerCore;
use super::record::unix_nanos;
use super::state::StoredConsumer;
use super::stream::{self, Consumer, Stream};
use crate::bus::{
    ConsumerConfig, ConsumerInfo, DeliverPolicy, RetentionPolicy, StorageKind, StreamConfig,
    StreamInfo,
};
use crate::error::BusError;

impl Inner {
    pub(super) fn stream_info(&self, s: &Stream) -> StreamInfo {
        let state = s.log.state();
        let health = s.health();
        StreamInfo {
            config: s.config(),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: if state.messages == 0 {
                0
            } else {
                state.first_seq
            },
            last_seq: state.last_seq,
            consumers: s.consumers.read().len(),
            counters: s.counters(),
            state: health.0,
            damage: health.1,
            high_water: state.high_water,
        }
    }

    pub(super) fn consumer_info(s: &Stream, c: &Consumer) -> ConsumerInfo {
        let core = c.core.lock();
        ConsumerInfo {
            stream: s.name.clone(),
            config: core.config().clone(),
            ack_floor: core.ack_floor(),
            ack_pending: core.ack_pending(),
            waiting: core.waiting(),
            counters: core.counters(),
        }
    }

    pub(super) async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        let _admin = self.admin.lock().await;
        validate_stream(&config)?;
        if let Ok(existing) = self.stream(&config.name) {
            if existing.config() == config {
                return Ok(self.stream_info(&existing));
            }
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: "a stream of that name exists with another config".to_owned(),
            });
        }
        self.check_overlap(&config)?;
        self.db()?.put_stream(&config)?;
        let stream = Stream::open(
            &self.stream_dir(&config.name),
            config,
            &self.config,
            &self.health,
        )?;
        self.streams
            .write()
            .insert(stream.name.clone(), stream.clone());
        Ok(self.stream_info(&stream))
    }

    pub(super) async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        let _admin = self.admin.lock().await;
        validate_stream(&config)?;
        let old = self.stream(&config.name)?;
        let before = old.config();
        if before.retention != config.retention || before.storage != config.storage {
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: "retention and storage cannot change".to_owned(),
            });
        }
        self.check_overlap(&config)?;
        self.db()?.put_stream(&config)?;
        old.shutdown();
        let fresh = Stream::open(
            &self.stream_dir(&config.name),
            config,
            &self.config,
            &self.health,
        )?;
        fresh.adopt(&old);
        self.streams
            .write()
            .insert(fresh.name.clone(), fresh.clone());
        Ok(self.stream_info(&fresh))
    }

    /// Refuses a stream whose subjects overlap another stream's.
    pub(super) fn check_overlap(&self, config: &StreamConfig) -> Result<(), BusError> {
        for other in self.streams.read().values() {
            if other.name == config.name {
                continue;
            }
            for a in &config.subjects {
                if let Some(b) = other.config().subjects.iter().find(|b| overlaps(a, b)) {
                    return Err(BusError::Conflict {
                        what: a.clone(),
                        reason: format!("overlaps `{b}` of stream `{}`", other.name),
                    });
                }
            }
        }
        Ok(())
    }

    pub(super) async fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        let _admin = self.admin.lock().await;
        let s = self.stream(name)?;
        self.streams.write().remove(name);
        s.shutdown();
        self.db()?.delete_stream(name)?;
        self.discard_stream_dir(name)
    }

    pub(super) async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError> {
        let _admin = self.admin.lock().await;
        let s = self.stream(stream)?;
        validate_consumer(&config)?;
        let filter = parse_filter(&config)?;
        if let Some(existing) = s.consumers.read().get(&config.name).cloned() {
            if existing.core.lock().config() == &config {
                return Ok(Self::consumer_info(&s, &existing));
            }
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: format!("a consumer of that name exists on `{stream}` with another config"),
            });
        }
        if s.config().retention == RetentionPolicy::Workqueue {
            check_workqueue_filters(&s, &config)?;
        }
        let start_seq = self.start_seq(&s, &config)?;
        if config.durable {
            let stored = StoredConsumer {
                config: config.clone(),
                start_seq,
            };
            self.db()?.put_consumer(stream, &stored)?;
        }
        let mut core = ConsumerCore::new(config.clone(), filter, start_seq);
        let consumer = {
            let mut consumers = s.consumers.write();
            s.replay_into(&mut core, start_seq)?;
            let held = core.outstanding();
            let consumer = Consumer::new(config.name.clone(), core);
            consumers.insert(config.name.clone(), consumer.clone());
            s.add_interest(&held);
            consumer
        };
        s.notify.notify_waiters();
        Ok(Self::consumer_info(&s, &consumer))
    }

    /// The first sequence a new consumer looks at, per its deliver policy.
    pub(super) fn start_seq(&self, s: &Stream, config: &ConsumerConfig) -> Result<u64, BusError> {
        let state = s.log.state();
        let next = state.last_seq + 1;
        Ok(match config.deliver {
            DeliverPolicy::All => 1,
            DeliverPolicy::New => next,
            DeliverPolicy::BySeq(seq) => seq.max(1),
            DeliverPolicy::ByTime(t) => s.log.seq_at_or_after(unix_nanos(t)).unwrap_or(next),
            DeliverPolicy::Last => {
                let filter = parse_filter(config)?;
                let mut last = None;
                s.scan(state.first_seq, |rec, _| {
                    if filter.as_ref().is_none_or(|f| f.matches(&rec.subject)) {
                        last = Some(rec.seq);
                    }
                })?;
                last.unwrap_or(next)
            }
        })
    }

    pub(super) async fn delete_consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<(), BusError> {
        let _admin = self.admin.lock().await;
        let (s, c) = self.consumer(stream, consumer)?;
        s.consumers.write().remove(consumer);
        if s.config().retention == RetentionPolicy::Interest {
            s.settle_done(&c.core.lock().outstanding());
        }
        self.db()?.delete_consumer(stream, consumer)
    }
}

/// Stream names, subjects and options this engine accepts.
pub(super) fn validate_stream(config: &StreamConfig) -> Result<(), BusError> {
    validate_name("stream.name", &config.name)?;
    if config.subjects.is_empty() {
        return Err(BusError::InvalidConfig {
            field: "stream.subjects".to_owned(),
            reason: "at least one subject pattern is required".to_owned(),
        });
    }
    stream::patterns(config)?;
    if let Some(dl) = &config.dead_letter {
        Subject::new(dl.as_str()).map_err(|e| BusError::InvalidConfig {
            field: "stream.dead_letter".to_owned(),
            reason: e.to_string(),
        })?;
    }
    if config.storage == StorageKind::Memory {
        return Err(BusError::Unsupported {
            feature: "stream.storage = memory (the embedded engine stores streams as files)"
                .to_owned(),
        });
    }
    Ok(())
}

pub(super) fn validate_consumer(config: &ConsumerConfig) -> Result<(), BusError> {
    validate_name("consumer.name", &config.name)?;
    if config.max_ack_pending == 0 {
        return Err(BusError::InvalidConfig {
            field: "consumer.max_ack_pending".to_owned(),
            reason: "must be at least 1".to_owned(),
        });
    }
    if config.max_deliver == Some(0) {
        return Err(BusError::InvalidConfig {
            field: "consumer.max_deliver".to_owned(),
            reason: "must be at least 1 (or null for unlimited)".to_owned(),
        });
    }
    Ok(())
}

pub(super) fn validate_name(field: &str, name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidConfig {
            field: field.to_owned(),
            reason: format!("`{name}` must be 1..=128 characters of [A-Za-z0-9_-]"),
        })
    }
}

pub(super) fn parse_filter(config: &ConsumerConfig) -> Result<Option<SubjectPattern>, BusError> {
    config
        .filter
        .as_ref()
        .map(|f| {
            SubjectPattern::new(f.as_str()).map_err(|e| BusError::InvalidSubject {
                subject: f.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// A work queue hands each message to one consumer: filters may not overlap.
pub(super) fn check_workqueue_filters(s: &Stream, config: &ConsumerConfig) -> Result<(), BusError> {
    let mine = config.filter.as_deref().unwrap_or(">");
    for (name, c) in s.consumers.read().iter() {
        let theirs = c.core.lock().config().filter.clone();
        let theirs = theirs.as_deref().unwrap_or(">");
        if overlaps(mine, theirs) {
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: format!(
                    "work-queue filter `{mine}` overlaps `{theirs}` of consumer `{name}`"
                ),
            });
        }
    }
    Ok(())
}

/// Whether some subject matches both patterns.
pub(super) fn overlaps(a: &str, b: &str) -> bool {
    fn go(a: &[&str], b: &[&str]) -> bool {
        match (a.first(), b.first()) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) | (None, None) => true,
            (None, _) | (_, None) => false,
            (Some(x), Some(y)) => (*x == "*" || *y == "*" || x == y) && go(&a[1..], &b[1..]),
        }
    }
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    go(&a, &b)
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn given_patterns_when_checking_overlap_then_wildcards_are_honoured() {
        assert!(overlaps("orders.>", "orders.eu.*"));
        assert!(overlaps("a.*.c", "a.b.*"));
        assert!(!overlaps("orders.>", "orders"));
        assert!(!overlaps("a.b", "a.c"));
        assert!(overlaps(">", "x"));
        assert!(!overlaps("a.*", "a.b.c"));
    }
}
