//! Counting open connections, in all and per client IP address, so one client cannot take every
//! slot: the HTTP accept loop (`limits.max_connections_per_address`) and the WebSocket upgrade
//! (`limits.ws.*`) each keep one [`Census`]. A [`Seat`] is one counted connection; dropping it
//! gives the place back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The open connections of one kind, in all and per client address.
#[derive(Debug, Default)]
pub(crate) struct Census {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a seat was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_total` connections are open.
    Total,
    /// `max_per_address` connections from this address are open.
    PerAddress(IpAddr),
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Seat {
    census: Arc<Census>,
    ip: Option<IpAddr>,
}

impl Census {
    fn lock(&self) -> MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A seat for a connection from `ip` (unknown: counted in the total only), or why not.
    pub(crate) fn take(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        max_total: usize,
        max_per_address: usize,
    ) -> Result<Seat, Refused> {
        let mut open = self.lock();
        if open.0 >= max_total {
            return Err(Refused::Total);
        }
        if let Some(ip) = ip {
            let mine = open.1.entry(ip).or_insert(0);
            if *mine >= max_per_address {
                return Err(Refused::PerAddress(ip));
            }
            *mine += 1;
        }
        open.0 += 1;
        Ok(Seat {
            census: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.census.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(mine) = open.1.get_mut(&ip)
        {
            *mine -= 1;
            if *mine == 0 {
                open.1.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_limits_when_seats_are_taken_then_totals_and_addresses_are_bounded_and_freed() {
        let census = Arc::new(Census::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = census.take(Some(a), 3, 2).unwrap();
        let _second = census.take(Some(a), 3, 2).unwrap();
        assert_eq!(
            census.take(Some(a), 3, 2).unwrap_err(),
            Refused::PerAddress(a)
        );
        let _third = census.take(Some(b), 3, 2).unwrap();
        assert_eq!(census.take(Some(b), 3, 2).unwrap_err(), Refused::Total);
        drop(first);
        assert!(
            census.take(Some(a), 3, 2).is_ok(),
            "a dropped seat is given back"
        );
    }
}
