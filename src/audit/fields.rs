//! Upstream drift, for `audit fields`: every path the housing system has sent, per recipient
//! type and route, as the ledger recorded it.
//!
//! The rules are written against the fields the upstream sent when they were written. When the
//! housing system starts sending something new (a field added in an upgrade, a key in a map),
//! the gateway withholds it, safely, but nobody reviews whether a rule should name it or the
//! upstream should stop sending it. Every record's `disclosed` and `withheld` arrays together
//! are the paths present upstream, so the ledger already holds the answer: this module counts,
//! per `(recipient_type, method, route, path)`, how many records carried the path, how often
//! it was disclosed and withheld, and when it was first and last seen. With a date, paths first
//! seen on or after it are marked new: those the rules must be reviewed against.
//!
//! It reads only paths, types, routes and timestamps: never a subject id or a value (the
//! ledger holds no values), so what it prints is not personal data. A key no rule names is
//! recorded as `*` (`tenant.*`) and counted as such.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// Where a path was seen: a route of a recipient type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    recipient_type: String,
    method: String,
    route: String,
    path: String,
}

/// What the records said of one path on one route.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    records: u64,
    disclosed: u64,
    withheld: u64,
    first_seen: String,
    last_seen: String,
}

/// The paths seen so far: fed one record at a time ([`Drift::add`]), so a ledger of any size
/// is read in memory bounded by the number of distinct paths, not records.
#[derive(Debug, Default)]
pub struct Drift {
    seen: BTreeMap<Key, Seen>,
}

/// One path on one route: a line of `audit fields`, an element of its JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathSeen {
    pub recipient_type: String,
    pub method: String,
    pub route: String,
    /// In rule form; a segment `*` stands for a key no rule names.
    pub path: String,
    /// Records that sent it to the recipient.
    pub disclosed: u64,
    /// Records that held it back.
    pub withheld: u64,
    /// Records that carried it at all (one that both disclosed and withheld it counts once).
    pub records: u64,
    /// The `ts` of the first and last record that carried it.
    pub first_seen: String,
    pub last_seen: String,
    /// First seen on or after the `since` date asked for.
    pub new: bool,
}

// === impl Drift ===

impl Drift {
    /// Counts one ledger record. A record without a recipient type or a route (a refusal before
    /// identity or routing, the ledger's own recovery and rotation records) carries no upstream
    /// paths and is skipped.
    pub fn add(&mut self, record: &Value) {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let (Some(kind), Some(route)) = (text("recipient_type"), text("route")) else {
            return;
        };
        let (method, ts) = (
            text("method").unwrap_or_default(),
            text("ts").unwrap_or_default(),
        );
        let disclosed = paths(record, "disclosed");
        let withheld = paths(record, "withheld");
        for path in disclosed.union(&withheld) {
            let key = Key {
                recipient_type: kind.to_owned(),
                method: method.to_owned(),
                route: route.to_owned(),
                path: (*path).to_owned(),
            };
            let seen = self.seen.entry(key).or_insert_with(|| Seen {
                records: 0,
                disclosed: 0,
                withheld: 0,
                first_seen: ts.to_owned(),
                last_seen: ts.to_owned(),
            });
            seen.records += 1;
            seen.disclosed += u64::from(disclosed.contains(path));
            seen.withheld += u64::from(withheld.contains(path));
            // `ts` sorts as text; taking the least and greatest, not the first and last read,
            // keeps the answer right whatever order the records came in (chains of PostgreSQL).
            if ts < seen.first_seen.as_str() {
                seen.first_seen = ts.to_owned();
            }
            if ts > seen.last_seen.as_str() {
                seen.last_seen = ts.to_owned();
            }
        }
    }

    /// Every path seen, by recipient type, method, route and path; marked new when first seen
    /// on or after `since` (`YYYY-MM-DD`, compared with the day of the record's `ts`).
    pub fn paths(&self, since: Option<&str>) -> Vec<PathSeen> {
        self.seen
            .iter()
            .map(|(key, seen)| PathSeen {
                recipient_type: key.recipient_type.clone(),
                method: key.method.clone(),
                route: key.route.clone(),
                path: key.path.clone(),
                disclosed: seen.disclosed,
                withheld: seen.withheld,
                records: seen.records,
                first_seen: seen.first_seen.clone(),
                last_seen: seen.last_seen.clone(),
                new: since.is_some_and(|day| day_of(&seen.first_seen) >= day),
            })
            .collect()
    }
}

// === impl PathSeen ===

impl PathSeen {
    /// `disclosed`, `withheld` or `both`: what the records did with it.
    pub fn fate(&self) -> &'static str {
        match (self.disclosed > 0, self.withheld > 0) {
            (true, true) => "both",
            (true, false) => "disclosed",
            _ => "withheld",
        }
    }

    /// Whether a segment of the path is a key no rule names, which the ledger writes as `*`
    /// because the key itself may be personal data.
    pub fn names_an_unnamed_key(&self) -> bool {
        self.path
            .split('.')
            .any(|segment| segment.trim_end_matches("[]") == "*")
    }
}

/// The day (`YYYY-MM-DD`) of a record's `ts`.
pub fn day_of(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// A record's `disclosed` or `withheld` paths, each once.
fn paths<'a>(record: &'a Value, key: &str) -> BTreeSet<&'a str> {
    record
        .get(key)
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use serde_json::json;

    use super::*;

    fn record(ts: &str, kind: &str, route: &str, disclosed: &[&str], withheld: &[&str]) -> Value {
        json!({
            "ts": ts, "recipient": "acme", "recipient_type": kind, "method": "GET",
            "route": route, "subjects": ["T-0001"], "disclosed": disclosed, "withheld": withheld,
        })
    }

    fn find<'a>(paths: &'a [PathSeen], route: &str, path: &str) -> &'a PathSeen {
        paths
            .iter()
            .find(|p| p.route == route && p.path == path)
            .unwrap_or_else(|| panic!("{route} {path} not in {paths:#?}"))
    }

    #[test]
    fn counts_each_path_per_route_with_first_and_last_seen() {
        let mut drift = Drift::default();
        let job = "/jobs/{job_id}";
        let tenant = "/tenants/{tenant_id}";
        drift.add(&record(
            "2026-11-02T09:00:00.000Z",
            "repairs",
            job,
            &["job.id"],
            &["tenant.phone"],
        ));
        drift.add(&record(
            "2026-11-20T09:00:00.000Z",
            "repairs",
            job,
            &["job.id", "tenant.phone"],
            &[],
        ));
        drift.add(&record(
            "2026-12-01T09:00:00.000Z",
            "repairs",
            job,
            &["job.id"],
            &["tenant.*"],
        ));
        drift.add(&record(
            "2026-11-05T09:00:00.000Z",
            "repairs",
            tenant,
            &["tenant.id"],
            &["tenant.phone"],
        ));
        let paths = drift.paths(Some("2026-11-20"));

        let id = find(&paths, job, "job.id");
        assert_eq!(
            (id.records, id.disclosed, id.withheld, id.fate()),
            (3, 3, 0, "disclosed")
        );
        assert_eq!(id.first_seen, "2026-11-02T09:00:00.000Z");
        assert_eq!(id.last_seen, "2026-12-01T09:00:00.000Z");
        assert!(!id.new);

        let phone = find(&paths, job, "tenant.phone");
        assert_eq!((phone.records, phone.disclosed, phone.withheld), (2, 1, 1));
        assert_eq!(phone.fate(), "both");
        assert_eq!(phone.last_seen, "2026-11-20T09:00:00.000Z");

        // The other route keeps its own count of the same path.
        let on_tenant = find(&paths, tenant, "tenant.phone");
        assert_eq!((on_tenant.records, on_tenant.fate()), (1, "withheld"));

        // First seen after the date: new, and a key no rule names.
        let unnamed = find(&paths, job, "tenant.*");
        assert!(unnamed.new && unnamed.names_an_unnamed_key());
        assert_eq!(unnamed.first_seen, "2026-12-01T09:00:00.000Z");
        assert!(!phone.names_an_unnamed_key());

        // Grouped by type, method and route, paths in order within each.
        let order: Vec<(&str, &str)> = paths
            .iter()
            .map(|p| (p.route.as_str(), p.path.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (job, "job.id"),
                (job, "tenant.*"),
                (job, "tenant.phone"),
                (tenant, "tenant.id"),
                (tenant, "tenant.phone")
            ]
        );
        // Without a date nothing is new.
        assert!(drift.paths(None).iter().all(|p| !p.new));
    }

    #[test]
    fn a_path_first_seen_on_the_date_is_new_and_order_of_reading_does_not_matter() {
        let mut drift = Drift::default();
        let route = "/jobs/{job_id}";
        drift.add(&record(
            "2026-11-20T23:59:59.999Z",
            "repairs",
            route,
            &[],
            &["job.notes[].text"],
        ));
        drift.add(&record(
            "2026-11-19T08:00:00.000Z",
            "repairs",
            route,
            &[],
            &["job.cost"],
        ));
        drift.add(&record(
            "2026-11-21T08:00:00.000Z",
            "repairs",
            route,
            &[],
            &["job.notes[].text"],
        ));
        drift.add(&record(
            "2026-11-20T00:00:00.000Z",
            "repairs",
            route,
            &[],
            &["job.notes[].text"],
        ));
        let paths = drift.paths(Some("2026-11-20"));
        let notes = find(&paths, route, "job.notes[].text");
        assert!(notes.new);
        assert_eq!(notes.first_seen, "2026-11-20T00:00:00.000Z");
        assert_eq!(notes.last_seen, "2026-11-21T08:00:00.000Z");
        assert!(!find(&paths, route, "job.cost").new);
        assert!(PathSeen {
            path: "household[].*[]".into(),
            ..notes.clone()
        }
        .names_an_unnamed_key());
    }

    #[test]
    fn records_without_a_type_or_route_and_repeated_paths_are_not_counted_twice() {
        let mut drift = Drift::default();
        drift.add(&json!({"ts": "2026-11-02T09:00:00.000Z", "event": "recovery"}));
        drift.add(&json!({
            "ts": "2026-11-02T09:00:00.000Z", "recipient": null, "recipient_type": null,
            "method": "GET", "route": null, "disclosed": [], "withheld": ["tenant.phone"],
        }));
        assert!(drift.paths(None).is_empty());
        drift.add(&record(
            "2026-11-02T09:00:00.000Z",
            "police",
            "/t",
            &["a", "a"],
            &["a"],
        ));
        let paths = drift.paths(None);
        assert_eq!(
            (paths[0].records, paths[0].disclosed, paths[0].withheld),
            (1, 1, 1)
        );
        // What is listed names no subject and no recipient.
        let printed = serde_json::to_string(&paths).unwrap();
        assert!(
            !printed.contains("T-0001") && !printed.contains("acme"),
            "{printed}"
        );
    }
}
