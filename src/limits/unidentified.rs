//! A budget per client address for refusals made before the recipient is identified.
//!
//! Every refusal is recorded, but a 401 (or a refusal before identify, such as a bad Host)
//! has nobody to account for it: unbounded, anyone who can reach the port could make the
//! ledger write and fsync a record per request, as fast as they can send them, until its disk
//! is full and every recipient gets 503. So each client address has a GCRA budget
//! (`[limits] unauthenticated_rate`, a burst of `unauthenticated_burst`), checked before
//! anything is written. Within it a refusal is recorded as usual; beyond it, it is answered as
//! usual and only counted, and [`Unidentified::take`] hands the counts to one summary record
//! per interval. The summary names no address: an address is personal data.
//!
//! An IPv6 address is keyed by its /64, the prefix one host is usually given, so an attacker
//! cannot take a fresh budget per address of its own subnet; an IPv4-mapped address is its
//! IPv4 address. At most [`MAX_ADDRESSES`] addresses are tracked: when that many hold budget
//! state, every refusal is counted rather than recorded until [`Unidentified::take`] drops
//! the addresses whose budget has refilled, at the next summary.
//!
//! Addresses are cheap for some (an IPv6 /48 holds 65,536 /64s), so a budget over all of
//! them together, [`TOTAL_PER_SECOND`], bounds what refusals before identify can write
//! however many addresses a flood comes from.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use governor::clock::DefaultClock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::UnauthenticatedLimits;

/// The most addresses holding budget state at once: memory for the budgets stays a few MiB
/// however many addresses a flood comes from.
pub const MAX_ADDRESSES: usize = 1 << 16;

/// The most refusals before identify recorded one by one per second, from all addresses
/// together (twice that in a burst): at about 1.5 KB a record, 300 KB/s at most.
pub const TOTAL_PER_SECOND: u32 = 200;

type Keyed = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>;
type Total = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// The per-address budgets and the refusals counted beyond them.
pub struct Unidentified {
    limiter: Keyed,
    /// Over every address together.
    total: Total,
    window: Mutex<Window>,
}

/// Refusals counted since the last [`Unidentified::take`].
struct Window {
    since: SystemTime,
    by_status: BTreeMap<u16, u64>,
}

/// What one interval's summary record says: how many refusals of each status were answered
/// but not recorded one by one, between `from` and `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub from: SystemTime,
    pub to: SystemTime,
    pub by_status: BTreeMap<u16, u64>,
}

// === impl Unidentified ===

impl Unidentified {
    pub fn new(limits: &UnauthenticatedLimits) -> Unidentified {
        let count = limits.rate.count.max(1);
        let period = (limits.rate.per / count).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let total = NonZeroU32::new(TOTAL_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let total_burst = total.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Unidentified {
            limiter: RateLimiter::hashmap(quota),
            total: RateLimiter::direct(Quota::per_second(total).allow_burst(total_burst)),
            window: Mutex::new(Window {
                since: SystemTime::now(),
                by_status: BTreeMap::new(),
            }),
        }
    }

    /// Whether a refusal from `addr` may be recorded one by one; spends one of its budget.
    pub fn admit(&self, addr: IpAddr) -> bool {
        // Full: nothing is recorded one by one until `take` makes room (a check would add
        // the address to the table).
        self.limiter.len() < MAX_ADDRESSES
            && self.limiter.check_key(&key(addr)).is_ok()
            && self.total.check().is_ok()
    }

    /// Counts a refusal of `status` that was answered but not recorded.
    pub fn suppress(&self, status: u16) {
        *self.window().by_status.entry(status).or_default() += 1;
    }

    /// The counts since the last call, if anything was suppressed, and a fresh window; also
    /// forgets the addresses whose budget has refilled.
    pub fn take(&self) -> Option<Summary> {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = SystemTime::now();
        let mut window = self.window();
        let from = std::mem::replace(&mut window.since, now);
        let by_status = std::mem::take(&mut window.by_status);
        (!by_status.is_empty()).then_some(Summary {
            from,
            to: now,
            by_status,
        })
    }

    /// Puts back the counts of a summary that could not be recorded, so the next one holds
    /// them.
    pub fn restore(&self, summary: Summary) {
        let mut window = self.window();
        window.since = window.since.min(summary.from);
        for (status, count) in summary.by_status {
            *window.by_status.entry(status).or_default() += count;
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        match self.window.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl std::fmt::Debug for Unidentified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unidentified").finish_non_exhaustive()
    }
}

/// The budget's key: an IPv4 address, or an IPv6 address's /64.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::*;
    use crate::rules::Rate;

    fn budget(count: u32, burst: u32) -> Unidentified {
        Unidentified::new(&UnauthenticatedLimits {
            rate: Rate {
                count,
                per: Duration::from_secs(60),
            },
            burst,
            summary_interval: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_address_gets_its_burst_and_then_nothing() {
        let u = budget(1, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| u.admit(a)));
        assert!(!u.admit(a));
        assert!(u.admit(b), "each address has its own budget");
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let u = budget(1, 2);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:eeee:dddd:cccc".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(u.admit(one));
        assert!(u.admit(same_64));
        assert!(!u.admit(one), "the /64 shares one budget");
        assert!(u.admit(other_64));
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(key(mapped), v4);
    }

    #[test]
    fn suppressed_refusals_are_summarised_once_and_restored_on_failure() {
        let u = budget(1, 1);
        assert_eq!(u.take(), None);
        u.suppress(401);
        u.suppress(401);
        u.suppress(400);
        let summary = u.take().unwrap();
        assert_eq!(summary.by_status, BTreeMap::from([(400, 1), (401, 2)]));
        assert!(summary.from <= summary.to);
        assert_eq!(u.take(), None, "counted once");
        u.suppress(401);
        u.restore(summary.clone());
        let again = u.take().unwrap();
        assert_eq!(again.by_status, BTreeMap::from([(400, 1), (401, 3)]));
        assert_eq!(again.from, summary.from);
    }

    #[test]
    fn many_addresses_together_get_one_budget_too() {
        let u = budget(1, 20);
        // A fresh address for every refusal, as a /48 of IPv6 gives: each is within its own
        // budget, and past the burst over all of them nothing more is recorded one by one.
        let burst = 2 * TOTAL_PER_SECOND;
        let admitted = (0..burst + 100)
            .filter(|i| u.admit(IpAddr::from((0x0a00_0000 + i).to_be_bytes())))
            .count();
        assert!(
            (burst as usize..burst as usize + 10).contains(&admitted),
            "{admitted} admitted"
        );
    }

    #[test]
    fn a_full_table_records_nothing_until_the_next_summary() {
        let u = budget(1, 2);
        for i in 0..MAX_ADDRESSES as u32 {
            assert!(u.limiter.check_key(&IpAddr::from(i.to_be_bytes())).is_ok());
        }
        let known = IpAddr::from(7u32.to_be_bytes());
        let new: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(!u.admit(new));
        assert!(!u.admit(known), "even with budget left");
        assert_eq!(u.limiter.len(), MAX_ADDRESSES, "the table did not grow");
    }
}
