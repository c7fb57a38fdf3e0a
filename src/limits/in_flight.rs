//! Per-recipient bound on requests in flight (`max_in_flight` on a recipient type).
//!
//! A rate limit counts requests over time; it does not stop one recipient from holding a
//! thousand requests open at once (a slow reader pipelines eight per connection), each
//! costing an upstream call, a parse and a buffered answer. Every other recipient then
//! waits behind that work. Each recipient gets its own budget of concurrent requests, taken
//! after the rate limit and held until the response is decided, a streamed response's until
//! its body has ended (see [`crate::stream::Job::slot`]); a request over it is refused
//! at once (429), before anything reaches the upstream, so one misbehaving key cannot
//! starve the others. A recipient whose type sets no `max_in_flight` is not bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::rules::Recipient;

/// The recipient already has its `max_in_flight` requests under way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many requests in flight for this recipient (at most {0} at once)")]
pub struct Full(pub u32);

/// One semaphore per recipient id, created on first use.
#[derive(Default)]
pub struct InFlight {
    /// Keyed by id, with the bound it was made for: a reload that changes the bound starts a
    /// new semaphore (requests under the old one finish under it).
    budgets: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

/// Held for the life of a request; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

// === impl InFlight ===

impl InFlight {
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot for one more request by `recipient`, or [`Full`] without waiting.
    ///
    /// # Errors
    ///
    /// [`Full`] when the recipient already has its type's `max_in_flight` under way.
    pub fn enter(&self, recipient: &Recipient) -> Result<Slot, Full> {
        let Some(max) = recipient.kind.max_in_flight else {
            return Ok(Slot(None));
        };
        let semaphore = {
            let mut budgets = match self.budgets.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            match budgets.get(&recipient.id) {
                Some((bound, s)) if *bound == max => s.clone(),
                _ => {
                    let s = Arc::new(Semaphore::new(max as usize));
                    budgets.insert(recipient.id.clone(), (max, s.clone()));
                    s
                }
            }
        };
        semaphore
            .try_acquire_owned()
            .map(|permit| Slot(Some(permit)))
            .map_err(|_| Full(max))
    }
}
