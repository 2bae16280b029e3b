//! The conformance kit against the embedded engine: a fresh temporary data directory per test,
//! a `ManualClock` the kit moves, and restart = close + reopen on the same directory.

use std::sync::Arc;
use std::time::Duration;

use ace_bus::conformance::TestEngine;
use ace_bus::{Bus, EmbeddedBus, EmbeddedConfig};
use ace_envelope::{Clock, ManualClock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tempfile::TempDir;

/// The embedded engine under test.
pub(crate) struct Embedded {
    dir: TempDir,
    clock: Arc<ManualClock>,
    bus: Arc<EmbeddedBus>,
}

impl Embedded {
    fn open(dir: &TempDir, clock: &Arc<ManualClock>) -> Arc<EmbeddedBus> {
        let config = EmbeddedConfig::new(dir.path()).with_clock(clock.clone());
        Arc::new(EmbeddedBus::open(config).expect("engine opens"))
    }

    /// A fresh engine on a fresh directory.
    pub(crate) fn fresh() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::fixed());
        let bus = Self::open(&dir, &clock);
        Embedded { dir, clock, bus }
    }
}

#[async_trait]
impl TestEngine for Embedded {
    fn bus(&self) -> Arc<dyn Bus> {
        self.bus.clone()
    }

    async fn restart(&mut self) {
        self.bus.close().await.expect("engine closes");
        self.bus = Self::open(&self.dir, &self.clock);
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

fn factory() -> BoxFuture<'static, Box<dyn TestEngine>> {
    Box::pin(async { Box::new(Embedded::fresh()) as Box<dyn TestEngine> })
}

ace_bus::conformance_suite!(factory);
