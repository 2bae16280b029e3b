//! Agent presence: who is online, with which capabilities and clearance, until when.
//!
//! An agent announces itself with a heartbeat ([`Core::heartbeat`]); its presence lasts `ttl_ms`
//! (or [`PresenceConfig::default_ttl`]) past the last beat, measured on the injected
//! [`Clock`](ace_envelope::Clock), so tests move a `ManualClock` instead of sleeping.
//!
//! A heartbeat is authorized as a publish on [`heartbeat_subject`]
//! (`ace.comms.agent.agent.{id}.evt.heartbeat.v1`), and identity comes from authentication: the
//! caller beats as itself (its principal id is the agent id) unless it may manage that agent
//! (`Action::ManageAgent`, admin with the shipped roles), and the clearance shown is at most the
//! caller's own (its own when the beat names none). Each refusal is a `denied` ledger entry. Presence changes are events on the bus,
//! published by the server itself ([`RequestContext::internal`]) through [`Core::publish`]
//! like any message (so they are validated, against their contract too, and recorded):
//! `ace.comms.system.agent.{id}.evt.agent_online.v1` (name `agent_online`) when an agent that was
//! not present beats, `ace.comms.system.agent.{id}.evt.agent_offline.v1` (name `agent_offline`)
//! when its presence expires; both carry the [`AgentPresence`] as JSON with `schema`
//! `comms.agent.presence@1.0.0`, the catalogue's (`contracts/comms/events.master.yaml`).
//! Expiry is found by [`Core::sweep_agents`], which the server runs periodically and which every
//! read ([`Core::agents`], [`Core::agent`]) and heartbeat runs first, so nobody ever sees an
//! expired agent. Presence lives in memory: after a restart agents appear as they beat again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

pub use ace_envelope::api::http::{AgentPresence, Heartbeat};
pub use ace_envelope::api::system::presence_subject;
use ace_envelope::api::system::{self, AGENT_OFFLINE_NAME, AGENT_ONLINE_NAME};
use ace_envelope::{Envelope, Kind};
use chrono::{DateTime, Utc};

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

/// Longest agent id accepted (it is one subject token).
pub const MAX_AGENT_ID_LEN: usize = 128;

/// How long presence lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Presence after a heartbeat that names no `ttl_ms`.
    pub default_ttl: Duration,
    /// Longest `ttl_ms` a heartbeat may ask for.
    pub max_ttl: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            default_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(3_600),
        }
    }
}

/// The table of present agents (in memory; one per core).
#[derive(Debug, Default)]
pub(crate) struct Presence {
    agents: Mutex<HashMap<String, AgentPresence>>,
}

impl Presence {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentPresence>> {
        // A panic while holding the lock cannot leave an entry half-written (each update is one
        // insert), so a poisoned table is still consistent.
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a beat; true when the agent was not present before.
    fn beat(&self, presence: AgentPresence) -> (AgentPresence, bool) {
        let mut table = self.table();
        let previous = table.get(&presence.id);
        let came_online = previous.is_none_or(|p| p.expires_at <= presence.last_seen);
        let presence = match previous {
            Some(p) if !came_online => AgentPresence {
                online_since: p.online_since,
                ..presence
            },
            _ => presence,
        };
        table.insert(presence.id.clone(), presence.clone());
        (presence, came_online)
    }

    /// Removes and returns every presence expired at `now`.
    fn expire(&self, now: DateTime<Utc>) -> Vec<AgentPresence> {
        let mut table = self.table();
        let gone: Vec<String> = table
            .values()
            .filter(|p| p.expires_at <= now)
            .map(|p| p.id.clone())
            .collect();
        let mut expired: Vec<AgentPresence> =
            gone.iter().filter_map(|id| table.remove(id)).collect();
        expired.sort_by(|a, b| a.id.cmp(&b.id));
        expired
    }

    fn forget(&self, id: &str) {
        self.table().remove(id);
    }

    fn list(&self, capability: Option<&str>) -> Vec<AgentPresence> {
        let mut agents: Vec<AgentPresence> = self
            .table()
            .values()
            .filter(|p| capability.is_none_or(|c| p.capabilities.iter().any(|have| have == c)))
            .cloned()
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    fn get(&self, id: &str) -> Option<AgentPresence> {
        self.table().get(id).cloned()
    }

    /// How many agents are present at `now`, by `agent_type`; expired ones are not counted
    /// (and not removed: that is the sweep's, with its offline event).
    fn count_by_type(&self, now: DateTime<Utc>) -> BTreeMap<Option<String>, usize> {
        let mut counts = BTreeMap::new();
        for presence in self.table().values().filter(|p| p.expires_at > now) {
            *counts.entry(presence.agent_type.clone()).or_default() += 1;
        }
        counts
    }
}

/// Checks that `id` can be one subject token (`[A-Za-z0-9_-]{1,max}`); `field` names it.
pub(crate) fn check_id(field: &'static str, id: &str, max: usize) -> Result<(), CoreError> {
    let reason = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > max {
        format!("is {} bytes long, more than {max}", id.len())
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        format!("`{id}` holds `{c}`; only letters, digits, `_` and `-` are allowed")
    } else {
        return Ok(());
    };
    Err(CoreError::InvalidRequest { field, reason })
}

/// The subject a heartbeat of agent `id` is authorized as: the caller must be allowed to
/// publish on it (the shipped `agent` role is, through `ace.comms.agent.>`), although nothing
/// is published there — the presence events themselves are the server's.
pub fn heartbeat_subject(id: &str) -> String {
    format!("ace.comms.agent.agent.{id}.evt.heartbeat.v1")
}

impl Core {
    /// Registers or refreshes the presence of agent `id`. The caller must be allowed to publish
    /// on [`heartbeat_subject`]; a refusal is `FORBIDDEN` and changes nothing. An agent that was
    /// not present comes online: `…agent.{id}.evt.agent_online.v1` is published by the server
    /// ([`RequestContext::internal`]: callers never need rights on system subjects) before the
    /// answer; if that publish fails, the agent is not present and the failure is the answer.
    pub async fn heartbeat(
        &self,
        ctx: &RequestContext,
        id: &str,
        beat: Heartbeat,
    ) -> Result<AgentPresence, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        check_id("id", id, MAX_AGENT_ID_LEN)?;
        let subject = heartbeat_subject(id);
        self.judged(ctx, &principal, Action::Publish(&subject))
            .await?;
        // Identity from authentication: an agent beats as itself; beating for another id is
        // managing that agent (the shipped roles: admin only).
        if principal.id != id {
            self.judged(ctx, &principal, Action::ManageAgent(id))
                .await?;
        }
        let ttl = self.presence_ttl(&beat)?;
        if beat.clearance.is_some_and(|c| c > 5) {
            return Err(CoreError::InvalidRequest {
                field: "clearance",
                reason: format!("is {}, above 5", beat.clearance.unwrap_or_default()),
            });
        }
        // The clearance shown is never more than authentication granted: an agent may announce
        // less than its own, and one that announces none shows its own.
        let clearance = match beat.clearance {
            _ if ctx.is_internal() => beat.clearance,
            Some(claimed) if claimed > principal.clearance => {
                let action = Action::Publish(&subject);
                let reasons = vec![format!(
                    "`clearance` {claimed} is above the caller's own clearance {}",
                    principal.clearance
                )];
                self.record_denial(ctx, &principal, action, &reasons).await;
                return Err(CoreError::Forbidden {
                    principal: principal.id.clone(),
                    action: action.to_string(),
                    reasons,
                });
            }
            Some(claimed) => Some(claimed),
            None => Some(principal.clearance),
        };
        if beat.meta.as_ref().is_some_and(|m| !m.is_object()) {
            return Err(CoreError::InvalidRequest {
                field: "meta",
                reason: "must be a JSON object".to_owned(),
            });
        }
        self.sweep_agents().await;
        let now = self.clock.now();
        let presence = AgentPresence {
            id: id.to_owned(),
            agent_type: beat.agent_type,
            capabilities: beat.capabilities,
            clearance,
            meta: beat.meta,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            online_since: now,
            last_seen: now,
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX),
        };
        let (presence, came_online) = self.presence.beat(presence);
        if came_online {
            let server = RequestContext::internal();
            if let Err(err) = self.announce(&server, &presence, AGENT_ONLINE_NAME).await {
                // No presence without its online event: the agent beats again once it may.
                self.presence.forget(id);
                return Err(err);
            }
        }
        Ok(presence)
    }

    /// The present agents, sorted by id; only those announcing `capability` when given.
    pub async fn agents(
        &self,
        ctx: &RequestContext,
        capability: Option<&str>,
    ) -> Result<Vec<AgentPresence>, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        self.sweep_agents().await;
        Ok(self.presence.list(capability))
    }

    /// One present agent; `NOT_FOUND` when it never beat or its presence expired.
    pub async fn agent(&self, ctx: &RequestContext, id: &str) -> Result<AgentPresence, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        self.sweep_agents().await;
        self.presence
            .get(id)
            .ok_or_else(|| CoreError::AgentNotFound { id: id.to_owned() })
    }

    /// Removes every expired presence and publishes its `agent_offline` event (as the `internal`
    /// transport); returns the agents that went offline. A failed publish is logged, not
    /// retried: the presence is gone either way.
    pub async fn sweep_agents(&self) -> Vec<AgentPresence> {
        let expired = self.presence.expire(self.clock.now());
        let ctx = RequestContext::internal();
        for presence in &expired {
            if let Err(err) = self.announce(&ctx, presence, AGENT_OFFLINE_NAME).await {
                tracing::warn!(agent = %presence.id, error = %err, "publishing agent_offline failed");
            }
        }
        expired
    }

    /// How many agents are present now, by `agent_type` (`None`: announced no type), for the
    /// server's metrics: no caller, so no authentication, and nothing is swept (a read that
    /// publishes no `offline` event).
    pub fn present_agents(&self) -> BTreeMap<Option<String>, usize> {
        self.presence.count_by_type(self.clock.now())
    }

    fn presence_ttl(&self, beat: &Heartbeat) -> Result<Duration, CoreError> {
        let max = self.presence_config.max_ttl;
        match beat.ttl_ms {
            None => Ok(self.presence_config.default_ttl),
            Some(0) => Err(CoreError::InvalidRequest {
                field: "ttl_ms",
                reason: "must be above 0".to_owned(),
            }),
            Some(ms) if Duration::from_millis(ms) > max => Err(CoreError::InvalidRequest {
                field: "ttl_ms",
                reason: format!("is {ms}, above the limit of {} ms", max.as_millis()),
            }),
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }

    async fn announce(
        &self,
        ctx: &RequestContext,
        presence: &AgentPresence,
        name: &str,
    ) -> Result<(), CoreError> {
        let payload = serde_json::to_value(presence).unwrap_or_default();
        let envelope = Envelope::builder(Kind::Event, presence_subject(&presence.id, name))
            .clock(&*self.clock)
            .domain(system::DOMAIN)
            .name(name)
            .schema(system::AGENT_PRESENCE_SCHEMA)
            .payload_json(payload)
            .build()
            .map_err(|err| CoreError::InvalidRequest {
                field: "id",
                reason: err.to_string(),
            })?;
        self.publish(ctx, envelope).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use ace_bus::{EmbeddedBus, EmbeddedConfig};
    use ace_contracts::Registry;
    use ace_envelope::{Clock, ManualClock};

    use crate::{CoreLimits, Hooks};

    fn core(dir: &std::path::Path, clock: Arc<ManualClock>) -> Core {
        core_with(dir, clock, Hooks::development())
    }

    fn core_with(dir: &std::path::Path, clock: Arc<ManualClock>, hooks: Hooks) -> Core {
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("bus opens");
        Core::new(
            Arc::new(bus),
            Arc::new(Registry::embedded().expect("contracts load")),
            clock,
            hooks,
            CoreLimits::default(),
        )
    }

    /// Refuses every publish on system subjects and heartbeats of agent `a1`.
    #[derive(Debug)]
    struct NoSystemEventsNorA1;

    impl crate::Authorizer for NoSystemEventsNorA1 {
        fn authorize(
            &self,
            _: &crate::Principal,
            action: crate::Action<'_>,
            _: Option<&Envelope>,
        ) -> crate::Decision {
            match action {
                crate::Action::Publish(s) if s.starts_with("ace.comms.system.") => {
                    crate::Decision::deny("no system events")
                }
                crate::Action::Publish(s) if s == heartbeat_subject("a1") => {
                    crate::Decision::deny("a1 may not beat")
                }
                _ => crate::Decision::Allow,
            }
        }
    }

    #[tokio::test]
    async fn given_a_refused_heartbeat_subject_when_beating_then_403_and_not_present() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(NoSystemEventsNorA1),
            ..Hooks::development()
        };
        let core = core_with(dir.path(), Arc::new(ManualClock::fixed()), hooks);
        let ctx = RequestContext::new("test");
        let refused = core.heartbeat(&ctx, "a1", beat(1_000, &[])).await;
        assert!(
            matches!(&refused, Err(CoreError::Forbidden { reasons, .. }) if reasons[0].contains("a1")),
            "{refused:?}"
        );
        assert!(core.agents(&ctx, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn given_a_caller_without_system_rights_when_beating_then_the_server_announces_it() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(NoSystemEventsNorA1),
            ..Hooks::development()
        };
        let core = core_with(dir.path(), Arc::new(ManualClock::fixed()), hooks);
        let mut sub = events(&core).await;
        let ctx = RequestContext::new("test");
        core.heartbeat(&ctx, "a2", beat(1_000, &[])).await.unwrap();
        let online = sub.next().await.expect("online event");
        assert_eq!(
            online.subject.as_str(),
            presence_subject("a2", AGENT_ONLINE_NAME)
        );
        let source = online.source.as_ref().expect("stamped");
        assert_eq!(source.id, crate::SYSTEM_PRINCIPAL_ID);
    }

    async fn events(core: &Core) -> Box<dyn ace_bus::LiveSubscription> {
        core.bus
            .subscribe("ace.comms.system.agent.>", None)
            .await
            .expect("subscribes")
    }

    fn beat(ttl_ms: u64, capabilities: &[&str]) -> Heartbeat {
        Heartbeat {
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
            ttl_ms: Some(ttl_ms),
            ..Heartbeat::default()
        }
    }

    #[tokio::test]
    async fn given_a_first_beat_when_the_ttl_passes_then_online_then_offline_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::fixed());
        let core = core(dir.path(), clock.clone());
        let mut sub = events(&core).await;
        let ctx = RequestContext::new("test");
        let first = core
            .heartbeat(&ctx, "a1", beat(1_000, &["x"]))
            .await
            .unwrap();
        clock.advance(Duration::from_millis(500));
        let second = core
            .heartbeat(&ctx, "a1", beat(1_000, &["x"]))
            .await
            .unwrap();
        assert_eq!(
            second.online_since, first.online_since,
            "a refresh keeps the start"
        );
        assert_eq!(core.agent(&ctx, "a1").await.unwrap().last_seen, clock.now());
        clock.advance(Duration::from_millis(1_000));
        assert!(matches!(
            core.agent(&ctx, "a1").await,
            Err(CoreError::AgentNotFound { .. })
        ));
        let online = sub.next().await.expect("online event");
        assert_eq!(
            online.subject.as_str(),
            presence_subject("a1", AGENT_ONLINE_NAME)
        );
        let offline = sub.next().await.expect("offline event");
        assert_eq!(
            offline.subject.as_str(),
            presence_subject("a1", AGENT_OFFLINE_NAME)
        );
        assert_eq!(offline.payload.as_ref().unwrap()["id"], "a1");
        let contracts = Registry::embedded().expect("contracts load");
        for (event, name) in [(&online, AGENT_ONLINE_NAME), (&offline, AGENT_OFFLINE_NAME)] {
            assert_eq!(event.name.as_deref(), Some(name));
            assert_eq!(event.domain.as_deref(), Some("comms"));
            let schema = event.schema.as_deref().expect("names its contract");
            assert_eq!(schema, system::AGENT_PRESENCE_SCHEMA);
            let contract = contracts.resolve(schema).expect("registered");
            if let Err(errors) = contract.validate(event.payload.as_ref().expect("payload")) {
                panic!("{name} breaks {schema}: {errors:?}");
            }
        }
    }

    #[tokio::test]
    async fn given_agents_with_capabilities_when_filtered_then_only_matching_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), Arc::new(ManualClock::fixed()));
        let ctx = RequestContext::new("test");
        core.heartbeat(&ctx, "b", beat(1_000, &["sum", "tr"]))
            .await
            .unwrap();
        core.heartbeat(&ctx, "a", beat(1_000, &["tr"]))
            .await
            .unwrap();
        let ids = |v: Vec<AgentPresence>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(core.agents(&ctx, None).await.unwrap()), ["a", "b"]);
        assert_eq!(ids(core.agents(&ctx, Some("sum")).await.unwrap()), ["b"]);
    }

    #[tokio::test]
    async fn given_agents_of_two_types_when_one_expires_then_present_agents_counts_the_rest_by_type()
     {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::fixed());
        let core = core(dir.path(), clock.clone());
        let ctx = RequestContext::new("test");
        let typed = |kind: Option<&str>, ttl_ms| Heartbeat {
            agent_type: kind.map(str::to_owned),
            ..beat(ttl_ms, &[])
        };
        core.heartbeat(&ctx, "w1", typed(Some("worker"), 1_000))
            .await
            .unwrap();
        core.heartbeat(&ctx, "w2", typed(Some("worker"), 5_000))
            .await
            .unwrap();
        core.heartbeat(&ctx, "u", typed(None, 5_000)).await.unwrap();
        let worker = Some("worker".to_owned());
        let counts = core.present_agents();
        assert_eq!(counts, BTreeMap::from([(None, 1), (worker.clone(), 2)]));
        clock.advance(Duration::from_millis(1_000));
        assert_eq!(
            core.present_agents(),
            BTreeMap::from([(None, 1), (worker, 1)]),
            "expired at its expires_at"
        );
        let listed = core.agents(&ctx, None).await.unwrap();
        assert_eq!(
            listed.len(),
            2,
            "counting removed nothing the sweep did not"
        );
    }

    #[tokio::test]
    async fn given_bad_heartbeats_when_sent_then_the_field_at_fault_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), Arc::new(ManualClock::fixed()));
        let ctx = RequestContext::new("test");
        let field = |r: Result<AgentPresence, CoreError>| match r {
            Err(CoreError::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid request, got {other:?}"),
        };
        assert_eq!(field(core.heartbeat(&ctx, "a.b", beat(1, &[])).await), "id");
        assert_eq!(
            field(core.heartbeat(&ctx, "a", beat(0, &[])).await),
            "ttl_ms"
        );
        let too_long = beat(u64::MAX, &[]);
        assert_eq!(field(core.heartbeat(&ctx, "a", too_long).await), "ttl_ms");
        let clearance = Heartbeat {
            clearance: Some(6),
            ..Heartbeat::default()
        };
        assert_eq!(
            field(core.heartbeat(&ctx, "a", clearance).await),
            "clearance"
        );
    }
}
