//! Refusals before identify that were answered without a record of their own, recorded
//! together now and then ([`crate::limits::unidentified`]).

use serde_json::{json, Value};

use crate::audit;
use crate::limits::unidentified::Summary;

use super::{trail, Gateway};

// === impl Gateway ===

impl Gateway {
    /// Records, every `[limits] unauthenticated_summary_interval` and once more when `stop`
    /// resolves, how many refusals before identity were answered but not recorded one by one
    /// (one record per status, only when there were any). The server runs it for as long as
    /// it serves.
    pub async fn summarise_unidentified(&self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.limits.unauthenticated.summary_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                () = &mut stop => true,
            };
            self.write_unidentified_summary().await;
            if stopping {
                return;
            }
        }
    }

    /// One summary record per status: `error`, `count` and `interval`, and no address or
    /// target. What cannot be written is kept for the next summary.
    async fn write_unidentified_summary(&self) {
        let Some(summary) = self.unidentified.take() else {
            return;
        };
        let seconds = summary
            .to
            .duration_since(summary.from)
            .unwrap_or_default()
            .as_secs_f64();
        let interval = json!({
            "from": audit::rfc3339(summary.from),
            "to": audit::rfc3339(summary.to),
            "seconds": (seconds * 1000.0).round() / 1000.0,
        });
        let mut statuses = summary.by_status.iter();
        while let Some((&status, &count)) = statuses.next() {
            let mut extra = serde_json::Map::new();
            extra.insert(
                "error".into(),
                Value::from("unauthenticated_refusals_summarised"),
            );
            extra.insert("count".into(), Value::from(count));
            extra.insert("interval".into(), interval.clone());
            let record = trail::blank(trail::new_request_id(), status, extra);
            if let Err(e) = self.audit.append(record).await {
                tracing::error!(error = %e, "cannot record the summary of unidentified refusals; kept for the next");
                let mut rest =
                    std::iter::once((status, count)).collect::<std::collections::BTreeMap<_, _>>();
                rest.extend(statuses.map(|(&s, &c)| (s, c)));
                self.unidentified.restore(Summary {
                    by_status: rest,
                    ..summary
                });
                return;
            }
        }
    }
}
