//! The servers the governance and allocation benches measure, opened in process.

use ace_bus::{StreamConfig, SyncPolicy};
use ace_core::RequestContext;
use ace_server::{App, AuthConfig, AuthMode, Config, LedgerSyncMode};
use sha2::{Digest, Sha256};

/// The API key of the governed servers' one principal (`bench-agent`, role `agent`).
pub(crate) const API_KEY: &str = "bench-key-0123456789abcdef0123456789abcdef";

/// The subject captured by the bench stream of sync `sync` (`never` or `always`).
pub(crate) fn subject(sync: &str) -> String {
    format!("ace.comms.a2a.agent.bench.evt.{sync}.v1")
}

/// A server over `dir`, governed or not, with the ledger syncing as `ledger` says (`None`: no
/// ledger), no default streams and the two bench streams `BENCH_NEVER` and `BENCH_ALWAYS`.
///
/// - not governed: `auth.mode: development` (every caller the development principal, RBAC and
///   Rego off; EHI still scores every message);
/// - governed: `auth.mode: enforced` with [`API_KEY`] (`X-ACE-API-Key`, SHA-256 store), RBAC,
///   Rego and EHI from the shipped policies.
pub(crate) async fn open(
    dir: &std::path::Path,
    governed: bool,
    ledger: Option<LedgerSyncMode>,
) -> App {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.streams.create_defaults = false;
    config.limits.max_connections_per_address = 1_000;
    if governed {
        let keys = dir.join("api-keys.yaml");
        let hash = hex::encode(Sha256::digest(API_KEY.as_bytes()));
        std::fs::write(
            &keys,
            format!(
                "keys:\n  - sha256: {hash}\n    principal: {{id: bench-agent, type: agent, \
                 roles: [agent], clearance: 1}}\n"
            ),
        )
        .unwrap();
        config.auth = AuthConfig {
            mode: AuthMode::Enforced,
            api_keys: Some(keys),
            ..AuthConfig::default()
        };
    }
    config.ledger.enabled = ledger.is_some();
    config.ledger.sync = ledger.unwrap_or_default();
    let app = App::open(&config).await.expect("the server opens");
    let ctx = RequestContext::internal();
    for (name, sync) in [("never", SyncPolicy::Never), ("always", SyncPolicy::Always)] {
        let stream = StreamConfig {
            sync,
            ..StreamConfig::new(
                format!("BENCH_{}", name.to_uppercase()),
                &[&format!("ace.comms.a2a.agent.bench.evt.{name}.>")],
            )
        };
        app.state().core().add_stream(&ctx, stream).await.unwrap();
    }
    app
}
