//! Per-recipient rate limits (GCRA, with governor).
//!
//! Runs after authorize and before anything is sent upstream, so a recipient over its rate
//! costs the housing system nothing. The rate is the recipient's `rate_limit`, else its type's;
//! a recipient with neither is not limited. Limits are per replica; the [`Limiter`] trait is the
//! seam where a shared limiter (Redis) slots in for several replicas.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::rules::{Rate, Recipient};

/// The recipient is over its rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded: retry after {retry_after_secs} s")]
pub struct Exceeded {
    /// Whole seconds until a request would be allowed, at least 1 (for `Retry-After`).
    pub retry_after_secs: u64,
}

/// Decides whether a recipient may make one more request now.
pub trait Limiter: Send + Sync {
    /// # Errors
    ///
    /// [`Exceeded`] when the recipient is over its rate.
    fn check(&self, recipient: &Recipient) -> Result<(), Exceeded>;
}

/// One GCRA limiter per recipient, in this process.
///
/// Limiters are kept by recipient id and replaced only when the recipient's rate changes, so
/// a rules reload does not hand everyone a fresh burst.
#[derive(Default)]
pub struct Local {
    limiters: Mutex<HashMap<String, (Rate, Arc<DefaultDirectRateLimiter>)>>,
    clock: DefaultClock,
}

// === impl Local ===

impl Local {
    pub fn new() -> Self {
        Self::default()
    }

    fn limiter_for(&self, id: &str, rate: Rate) -> Arc<DefaultDirectRateLimiter> {
        let mut limiters = match self.limiters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match limiters.get(id) {
            Some((current, limiter)) if *current == rate => limiter.clone(),
            _ => {
                let limiter = Arc::new(RateLimiter::direct(quota(rate)));
                limiters.insert(id.to_string(), (rate, limiter.clone()));
                limiter
            }
        }
    }
}

impl Limiter for Local {
    fn check(&self, recipient: &Recipient) -> Result<(), Exceeded> {
        let Some(rate) = recipient.rate_limit.or(recipient.kind.rate_limit) else {
            return Ok(());
        };
        let limiter = self.limiter_for(&recipient.id, rate);
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Exceeded {
                retry_after_secs: whole_seconds(wait),
            }
        })
    }
}

/// `count` requests per `per`, as a burst of `count` refilled evenly over `per`.
fn quota(rate: Rate) -> Quota {
    let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let interval = rate.per / rate.count.max(1);
    Quota::with_period(interval.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

/// Rounds up, and never says 0: `Retry-After: 0` would invite an immediate retry.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }

    #[test]
    fn a_burst_of_count_then_refused() {
        let limiter = RateLimiter::direct(quota(Rate {
            count: 3,
            per: Duration::from_secs(60),
        }));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_ok());
        let refused = limiter.check().expect_err("fourth is over");
        let wait = refused.wait_time_from(DefaultClock::default().now());
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
    }
}
