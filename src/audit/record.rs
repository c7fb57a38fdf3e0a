//! The record a request hands to the ledger, bounded, and turned into the JSON object the
//! chain seals; and the `ts` format every record and checkpoint uses.

use serde_json::{Map, Value};

use super::error::Error;

/// The most bytes of a request path one record holds. A target may run to the 64 KiB of a
/// request head, and a refusal is recorded before anyone is identified: unbounded, every
/// 401 could write that much to the ledger's disk.
pub const MAX_PATH_BYTES: usize = 512;

/// The most bytes of a method one record holds: an extension method is a token of any length.
pub const MAX_METHOD_BYTES: usize = 32;

/// Ends a cut `path` or `method`, within its bound.
const CUT_MARK: char = '…';

/// One disclosure decision, before chaining; the pipeline fills it.
///
/// Serialised with `Option`s as `null` (not omitted) so every request record has the same keys
/// and a reader can tell "no recipient" from "field forgotten".
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Record {
    /// RFC 3339 UTC with milliseconds, as [`now_rfc3339`] makes it.
    pub ts: String,
    pub request_id: String,
    /// `None` for an unauthenticated request.
    pub recipient: Option<String>,
    pub recipient_type: Option<String>,
    pub method: String,
    /// The route template (`/jobs/{job_id}`); `None` when no route matched.
    pub route: Option<String>,
    pub path: String,
    pub status: u16,
    pub purpose: Option<String>,
    pub lawful_basis: Option<String>,
    /// The `when`/`refuse` reasons applied.
    pub reasons: Vec<String>,
    /// Data-subject ids, what `audit query --subject` searches.
    pub subjects: Vec<String>,
    pub disclosed: Vec<String>,
    pub withheld: Vec<String>,
    /// Extension fields (error code, rules generation, ...). A key here must not collide with a
    /// named field or with `prev_hash`/`hash`/`event`: `append` refuses such a record rather than
    /// let one value silently overwrite another in the chained line.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// === impl Record ===

impl Record {
    /// Sets `path`, cut to [`MAX_PATH_BYTES`]: a longer one ends in `…` within the bound and
    /// the record says `"path_cut": true`.
    pub fn set_path(&mut self, path: &str) {
        self.path = self.bounded("path_cut", path, MAX_PATH_BYTES);
    }

    /// Sets `scrubbed`: the scrub paths (rule form, sorted) where free text had something
    /// removed. Written only when there is one, as `rule_errors` is: a record without it
    /// hashes as records always have, and records from before scrubbing still verify.
    pub fn set_scrubbed(&mut self, paths: std::collections::BTreeSet<String>) {
        self.set_paths("scrubbed", paths);
    }

    /// Sets `received`: the accepted request-body paths (rule form, sorted) a write held.
    /// Written only when there is one, as `scrubbed` is, so records of reads hash as before.
    pub fn set_received(&mut self, paths: std::collections::BTreeSet<String>) {
        self.set_paths("received", paths);
    }

    fn set_paths(&mut self, key: &str, paths: std::collections::BTreeSet<String>) {
        if paths.is_empty() {
            self.extra.remove(key);
        } else {
            let paths = paths.into_iter().map(Value::String).collect();
            self.extra.insert(key.into(), Value::Array(paths));
        }
    }

    /// Sets `method`, cut to [`MAX_METHOD_BYTES`] as [`Record::set_path`] cuts a path
    /// (`"method_cut": true`).
    pub fn set_method(&mut self, method: &str) {
        self.method = self.bounded("method_cut", method, MAX_METHOD_BYTES);
    }

    /// `text` whole if it fits in `max` bytes, else its longest prefix that ends on a
    /// character boundary and leaves room for the mark; `flag` in `extra` says which.
    fn bounded(&mut self, flag: &str, text: &str, max: usize) -> String {
        if text.len() <= max {
            self.extra.remove(flag);
            return text.to_string();
        }
        let mut end = max - CUT_MARK.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.extra.insert(flag.into(), Value::Bool(true));
        let mut cut = String::with_capacity(end + CUT_MARK.len_utf8());
        cut.push_str(&text[..end]);
        cut.push(CUT_MARK);
        cut
    }
}

/// Keys `Record::extra` may not use: the named fields, the chain fields, and `event`, which marks
/// the ledger's own records (recovery, rotation) that carry no request.
const RESERVED_KEYS: &[&str] = &[
    "ts",
    "request_id",
    "recipient",
    "recipient_type",
    "method",
    "route",
    "path",
    "status",
    "purpose",
    "lawful_basis",
    "reasons",
    "subjects",
    "disclosed",
    "withheld",
    "prev_hash",
    "hash",
    "event",
];

/// The current time in the `ts` format: RFC 3339, UTC, milliseconds
/// (`2026-12-01T12:45:20.123Z`), so lines sort and compare as text.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `time` in the `ts` format.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Turns a record into the JSON object that will be chained, refusing extension keys that would
/// overwrite a named field (serde's `flatten` would let the later one win silently).
pub(super) fn to_map(record: Record) -> Result<Map<String, Value>, Error> {
    if let Some(key) = record
        .extra
        .keys()
        .find(|k| RESERVED_KEYS.contains(&k.as_str()))
    {
        return Err(Error::ReservedKey(key.clone()));
    }
    // Built by moving each field in, not through `serde_json::to_value`, which would clone
    // every string of the record (each disclosed and withheld path) once more per request.
    // The same keys and values as the derived `Serialize` gives: a test holds the two equal.
    // Destructured whole, so a new field is a compile error here until it is added.
    let Record {
        ts,
        request_id,
        recipient,
        recipient_type,
        method,
        route,
        path,
        status,
        purpose,
        lawful_basis,
        reasons,
        subjects,
        disclosed,
        withheld,
        extra,
    } = record;
    debug_assert!(
        path.len() <= MAX_PATH_BYTES && method.len() <= MAX_METHOD_BYTES,
        "a record's path and method are set through set_path and set_method"
    );
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let mut map = extra;
    map.insert("ts".into(), Value::String(ts));
    map.insert("request_id".into(), Value::String(request_id));
    map.insert("recipient".into(), text(recipient));
    map.insert("recipient_type".into(), text(recipient_type));
    map.insert("method".into(), Value::String(method));
    map.insert("route".into(), text(route));
    map.insert("path".into(), Value::String(path));
    map.insert("status".into(), Value::from(status));
    map.insert("purpose".into(), text(purpose));
    map.insert("lawful_basis".into(), text(lawful_basis));
    map.insert("reasons".into(), list(reasons));
    map.insert("subjects".into(), list(subjects));
    map.insert("disclosed".into(), list(disclosed));
    map.insert("withheld".into(), list(withheld));
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
pub(crate) mod tests {
    use super::*;

    /// A request record for subject `S{n % 3}`, distinct per `n`.
    pub(crate) fn record(n: usize) -> Record {
        Record {
            ts: now_rfc3339(),
            request_id: format!("req-{n}"),
            recipient: Some("acme-repairs".into()),
            recipient_type: Some("contractor".into()),
            method: "GET".into(),
            route: Some("/jobs/{job_id}".into()),
            path: format!("/jobs/J{n}"),
            status: 200,
            purpose: Some("repair".into()),
            lawful_basis: Some("contract".into()),
            reasons: vec![],
            subjects: vec![format!("S{}", n % 3)],
            disclosed: vec!["job.id".into(), "tenant.name".into()],
            withheld: vec!["tenant.phone".into()],
            extra: Map::new(),
        }
    }

    #[test]
    fn reserved_keys_cover_every_named_field() {
        let map = to_map(record(0)).unwrap();
        for key in map.keys() {
            assert!(RESERVED_KEYS.contains(&key.as_str()), "{key} not reserved");
        }
        assert_eq!(map.len() + 3, RESERVED_KEYS.len());
    }

    #[test]
    fn extension_fields_are_flattened_and_collisions_refused() {
        let mut r = record(1);
        r.extra
            .insert("error".into(), Value::from("upstream_timeout"));
        let map = to_map(r.clone()).unwrap();
        assert_eq!(map["error"], "upstream_timeout");
        assert_eq!(map["recipient_type"], "contractor");

        r.extra.insert("hash".into(), Value::from("forged"));
        assert!(matches!(to_map(r), Err(Error::ReservedKey(k)) if k == "hash"));
    }

    #[test]
    fn none_serialises_as_null() {
        let mut r = record(2);
        r.recipient = None;
        r.route = None;
        let map = to_map(r).unwrap();
        assert_eq!(map["recipient"], Value::Null);
        assert_eq!(map["route"], Value::Null);
    }

    /// `to_map` builds by hand exactly what the derived `Serialize` gives, for full and
    /// empty records, with extension fields of any JSON type.
    #[test]
    fn to_map_is_what_serde_serialises() {
        let mut full = record(7);
        full.reasons = vec!["r1".into(), "r2 \"quoted\"".into()];
        full.extra
            .insert("error".into(), Value::from("upstream_timeout"));
        full.extra
            .insert("rules_generation".into(), Value::from("ab12"));
        full.extra.insert(
            "segment".into(),
            serde_json::json!({"n": 3, "of": [1, 2.5, null]}),
        );
        let mut empty = record(0);
        empty.recipient = None;
        empty.recipient_type = None;
        empty.route = None;
        empty.purpose = None;
        empty.lawful_basis = None;
        empty.subjects.clear();
        empty.disclosed.clear();
        empty.withheld.clear();
        for r in [full, empty] {
            let Value::Object(expected) = serde_json::to_value(&r).unwrap() else {
                panic!("a record serialises to an object");
            };
            assert_eq!(to_map(r).unwrap(), expected);
        }
    }

    /// `scrubbed` is written sorted, and only when something was scrubbed: a record
    /// without it has exactly the keys records had before scrubbing existed.
    #[test]
    fn scrubbed_is_written_only_when_there_is_one() {
        let mut r = record(1);
        let before = to_map(r.clone()).unwrap();
        r.set_scrubbed(["notes".to_owned(), "description".to_owned()].into());
        let map = to_map(r.clone()).unwrap();
        assert_eq!(map["scrubbed"], serde_json::json!(["description", "notes"]));
        r.set_scrubbed(std::collections::BTreeSet::new());
        assert_eq!(to_map(r).unwrap(), before);
    }

    /// `received` likewise: a record of a read has exactly the keys it had before writes.
    #[test]
    fn received_is_written_only_when_there_is_one() {
        let mut r = record(1);
        let before = to_map(r.clone()).unwrap();
        r.set_received(["status".to_owned(), "appointment.date".to_owned()].into());
        let map = to_map(r.clone()).unwrap();
        assert_eq!(
            map["received"],
            serde_json::json!(["appointment.date", "status"])
        );
        r.set_received(std::collections::BTreeSet::new());
        assert_eq!(to_map(r).unwrap(), before);
    }

    #[test]
    fn a_long_path_or_method_is_cut_on_a_character_boundary_and_marked() {
        let mut r = record(3);
        r.set_path("/jobs/J-1");
        assert_eq!(r.path, "/jobs/J-1");
        assert!(r.extra.get("path_cut").is_none());
        // Two-byte characters, so the cut must step back off the middle of one.
        let long = format!("/{}", "é".repeat(600));
        r.set_path(&long);
        assert!(r.path.len() <= MAX_PATH_BYTES, "{}", r.path.len());
        assert!(r.path.len() >= MAX_PATH_BYTES - 4);
        assert!(r.path.ends_with('…'));
        assert!(long.starts_with(r.path.trim_end_matches('…')));
        assert_eq!(r.extra["path_cut"], true);
        // Exactly the bound is not cut; set again, the mark goes with the cut.
        r.set_path(&"a".repeat(MAX_PATH_BYTES));
        assert_eq!(r.path.len(), MAX_PATH_BYTES);
        assert!(r.extra.get("path_cut").is_none());
        r.set_method(&"X".repeat(1000));
        assert_eq!(r.method.len(), MAX_METHOD_BYTES);
        assert!(r.method.ends_with('…'));
        assert_eq!(r.extra["method_cut"], true);
        assert!(to_map(r).is_ok());
    }

    #[test]
    fn timestamp_format() {
        let ts = now_rfc3339();
        // 2026-12-01T12:45:20.123Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
        assert_eq!(&ts[19..20], ".");
    }
}
