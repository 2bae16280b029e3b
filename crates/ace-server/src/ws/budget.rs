//! Bytes waiting to be written to WebSocket clients, bounded three ways: per connection
//! (`limits.ws.max_queued_bytes`), per principal over all its connections
//! (`limits.ws.max_queued_bytes_per_principal`) and over the whole server
//! (`limits.ws.max_queued_bytes_total`). The frame count of `limits.ws.queue` alone does not
//! bound memory: a thousand frames of a megabyte each are a gigabyte per connection.
//!
//! Every frame put on a connection's queue is [`Budget::try_charge`]d (or, for consumer pushes,
//! [`Budget::charge`]d after waiting for room) against the three accounts at once, and the
//! [`Charge`] it gets travels with the frame: dropping it (the writer sent the frame, or the
//! queue was dropped with the connection) gives the bytes back, so no path can leak them. A frame
//! is admitted when it fits under every bound, or when its connection has nothing queued (so
//! one frame larger than the bound still goes to a client that reads). A live message that does
//! not fit closes the connection as a slow consumer (4008): memory never grows for a client that
//! does not read. The bytes queued now are the `ace_comms_ws_queued_bytes` gauge.
//!
//! A principal is the authenticated id; in development mode every client is the one development
//! principal, so all of them share one `max_queued_bytes_per_principal`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use prometheus::IntGauge;
use tokio::sync::Notify;

use crate::config::WsLimits;

/// One bounded count of queued bytes.
#[derive(Debug)]
struct Account {
    bytes: AtomicUsize,
    limit: usize,
}

impl Account {
    fn new(limit: usize) -> Self {
        Account {
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Adds `n` if the total stays within the limit (or `force`); false otherwise.
    fn add(&self, n: usize, force: bool) -> bool {
        let mut current = self.bytes.load(Ordering::Acquire);
        loop {
            let next = current.saturating_add(n);
            if next > self.limit && !force {
                return false;
            }
            match self.bytes.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    fn sub(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Which bound a frame did not fit under, for the close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// `limits.ws.max_queued_bytes`.
    Connection,
    /// `limits.ws.max_queued_bytes_per_principal`.
    Principal,
    /// `limits.ws.max_queued_bytes_total`.
    Total,
}

impl Over {
    /// The configuration key of the bound.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Over::Connection => "limits.ws.max_queued_bytes",
            Over::Principal => "limits.ws.max_queued_bytes_per_principal",
            Over::Total => "limits.ws.max_queued_bytes_total",
        }
    }
}

/// The accounts shared by every connection of one server: the total and one per principal.
#[derive(Debug)]
pub(crate) struct Budgets {
    total: Arc<Account>,
    principals: Mutex<HashMap<String, Weak<Account>>>,
    per_principal: usize,
    gauge: IntGauge,
}

impl Budgets {
    /// The accounts of a server with `limits`, reporting the bytes queued in `gauge`.
    pub(crate) fn new(limits: &WsLimits, gauge: IntGauge) -> Self {
        Budgets {
            total: Arc::new(Account::new(limits.max_queued_bytes_total)),
            principals: Mutex::new(HashMap::new()),
            per_principal: limits.max_queued_bytes_per_principal,
            gauge,
        }
    }

    /// The budget of one new connection of `principal`, bounded by `per_connection` bytes.
    pub(crate) fn open(&self, principal: &str, per_connection: usize) -> Arc<Budget> {
        let shared = {
            let mut principals = self
                .principals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget principals with no connection left (at most one entry per open connection).
            principals.retain(|_, account| account.strong_count() > 0);
            match principals.get(principal).and_then(Weak::upgrade) {
                Some(account) => account,
                None => {
                    let account = Arc::new(Account::new(self.per_principal));
                    principals.insert(principal.to_owned(), Arc::downgrade(&account));
                    account
                }
            }
        };
        Arc::new(Budget {
            connection: Account::new(per_connection),
            principal: shared,
            total: Arc::clone(&self.total),
            gauge: self.gauge.clone(),
            freed: Notify::new(),
        })
    }
}

/// The queued bytes of one connection, charged to its principal and the server too.
#[derive(Debug)]
pub(crate) struct Budget {
    connection: Account,
    principal: Arc<Account>,
    total: Arc<Account>,
    gauge: IntGauge,
    /// Woken whenever bytes are given back (a consumer push waits on it for room).
    freed: Notify,
}

/// Bytes charged for one queued frame; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

impl Budget {
    /// Charges `bytes` to every account, or none of them and names the bound it passed. A frame
    /// is always admitted when its connection has nothing queued.
    pub(crate) fn try_charge(self: &Arc<Self>, bytes: usize) -> Result<Charge, Over> {
        let alone = self.connection.bytes.load(Ordering::Acquire) == 0;
        if !self.connection.add(bytes, alone) {
            return Err(Over::Connection);
        }
        if !self.principal.add(bytes, alone) {
            self.connection.sub(bytes);
            return Err(Over::Principal);
        }
        if !self.total.add(bytes, alone) {
            self.principal.sub(bytes);
            self.connection.sub(bytes);
            return Err(Over::Total);
        }
        self.gauge.add(i64::try_from(bytes).unwrap_or(i64::MAX));
        Ok(Charge {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Charges `bytes`, waiting until they fit (consumer pushes: flow control, never a close).
    pub(crate) async fn charge(self: &Arc<Self>, bytes: usize) -> Charge {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Ok(charge) = self.try_charge(bytes) {
                return charge;
            }
            freed.await;
        }
    }

    /// Waits until the connection has room for at least one more byte under each bound, and
    /// returns how many bytes fit under the connection's bound now.
    pub(crate) async fn room(&self) -> usize {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let mine = self.connection.bytes.load(Ordering::Acquire);
            let fits = |account: &Account| account.bytes.load(Ordering::Acquire) < account.limit;
            if mine == 0 || (fits(&self.connection) && fits(&self.principal) && fits(&self.total)) {
                return self.connection.limit.saturating_sub(mine).max(1);
            }
            freed.await;
        }
    }

    fn release(&self, bytes: usize) {
        self.connection.sub(bytes);
        self.principal.sub(bytes);
        self.total.sub(bytes);
        self.gauge.sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connection: usize, principal: usize, total: usize) -> WsLimits {
        WsLimits {
            max_queued_bytes: connection,
            max_queued_bytes_per_principal: principal,
            max_queued_bytes_total: total,
            ..WsLimits::default()
        }
    }

    #[test]
    fn given_bounds_when_frames_are_charged_then_each_bound_refuses_what_passes_it_and_drops_give_back()
     {
        let config = limits(100, 150, 1_000);
        let gauge = IntGauge::new("g", "g").unwrap();
        let budgets = Budgets::new(&config, gauge.clone());
        let a = budgets.open("p", config.max_queued_bytes);
        let b = budgets.open("p", config.max_queued_bytes);
        let first = a.try_charge(60).unwrap();
        assert_eq!(a.try_charge(60).unwrap_err(), Over::Connection);
        let second = b.try_charge(60).unwrap();
        assert_eq!(
            b.try_charge(40).unwrap_err(),
            Over::Principal,
            "a and b share p's 150 bytes"
        );
        assert_eq!(gauge.get(), 120);
        drop(first);
        assert_eq!(gauge.get(), 60);
        let third = b.try_charge(40).unwrap();
        drop((second, third));
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn given_an_empty_connection_when_a_frame_larger_than_the_bound_comes_then_it_still_goes() {
        let config = limits(10, 10, 10);
        let budgets = Budgets::new(&config, IntGauge::new("g", "g").unwrap());
        let a = budgets.open("p", config.max_queued_bytes);
        let big = a.try_charge(50).unwrap();
        assert_eq!(a.try_charge(1).unwrap_err(), Over::Connection);
        drop(big);
        assert!(a.try_charge(1).is_ok());
    }

    #[test]
    fn given_the_server_total_when_another_principal_passes_it_then_it_is_named() {
        let config = limits(100, 100, 150);
        let budgets = Budgets::new(&config, IntGauge::new("g", "g").unwrap());
        let a = budgets.open("p", config.max_queued_bytes);
        let b = budgets.open("q", config.max_queued_bytes);
        let _held = a.try_charge(100).unwrap();
        let _b = b.try_charge(40).unwrap();
        assert_eq!(b.try_charge(40).unwrap_err(), Over::Total);
        assert_eq!(Over::Total.key(), "limits.ws.max_queued_bytes_total");
    }

    #[tokio::test]
    async fn given_a_full_connection_when_a_push_waits_then_it_goes_once_bytes_are_freed() {
        let config = limits(10, 100, 100);
        let budgets = Budgets::new(&config, IntGauge::new("g", "g").unwrap());
        let a = budgets.open("p", config.max_queued_bytes);
        let held = a.try_charge(10).unwrap();
        let waiter = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.charge(5).await.bytes }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "no room yet");
        drop(held);
        let charged = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(charged, 5);
    }
}
