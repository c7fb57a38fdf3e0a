//! Per-recipient rate limits (GCRA).
//!
//! Runs after authorize and before anything is sent upstream, so a recipient over its rate
//! costs the housing system nothing. The rate is the recipient's `rate_limit`, else its type's;
//! a recipient with neither is not limited. Behind the one [`Limiter`] trait: [`Local`]
//! (governor, this replica alone, the default) and [`redis::Shared`] (one budget for every
//! replica, `[limits] shared = "redis"`). [`in_flight`] bounds how many requests one recipient
//! may have under way at once; [`unidentified`] how many refusals before identity one client
//! address may have recorded one by one.

pub mod in_flight;
pub mod redis;
pub mod unidentified;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::SharedLimits;
use crate::metrics;
use crate::rules::{Rate, Recipient};

/// The recipient is over its rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded: retry after {retry_after_secs} s")]
pub struct Exceeded {
    /// Whole seconds until a request would be allowed, at least 1 (for `Retry-After`).
    pub retry_after_secs: u64,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Exceeded(#[from] Exceeded),
    /// The shared limiter could not answer and `on_redis_error = "refuse"`: no budget can be
    /// proven, so the request is not admitted (503).
    #[error("the shared rate limiter is unavailable, so the request was not admitted")]
    Unavailable,
}

/// The answer of [`Limiter::check`]: boxed, so the trait stays object-safe (`Arc<dyn Limiter>`)
/// while a shared limiter awaits the network.
pub type Check<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Decides whether a recipient may make one more request now.
pub trait Limiter: Send + Sync {
    /// # Errors
    ///
    /// [`Error::Exceeded`] when the recipient is over its rate; [`Error::Unavailable`] when
    /// the limiter cannot decide and is configured to refuse.
    fn check<'a>(&'a self, recipient: &'a Recipient) -> Check<'a>;
}

/// The limiter `[limits]` asks for: [`Local`], or [`redis::Shared`] when `shared = "redis"`.
///
/// # Errors
///
/// The Redis URL's variable is unset or holds no valid URL (the message names the variable,
/// never its value).
pub async fn from_settings(
    shared: Option<&SharedLimits>,
    metrics: metrics::SharedLimiter,
) -> Result<Arc<dyn Limiter>, String> {
    match shared {
        None => Ok(Arc::new(Local::new())),
        Some(settings) => Ok(Arc::new(redis::Shared::connect(settings, metrics).await?)),
    }
}

/// The rate that applies to `recipient`, if any.
fn rate_of(recipient: &Recipient) -> Option<Rate> {
    recipient.rate_limit.or(recipient.kind.rate_limit)
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

    /// One request by `id` against `rate`, decided now, without waiting.
    fn check_rate(&self, id: &str, rate: Rate) -> Result<(), Exceeded> {
        let limiter = self.limiter_for(id, rate);
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Exceeded {
                retry_after_secs: whole_seconds(wait),
            }
        })
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
    fn check<'a>(&'a self, recipient: &'a Recipient) -> Check<'a> {
        let decided = match rate_of(recipient) {
            None => Ok(()),
            Some(rate) => self.check_rate(&recipient.id, rate).map_err(Error::from),
        };
        Box::pin(std::future::ready(decided))
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
