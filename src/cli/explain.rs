//! `explain`: a dry run of one request against an upstream body from a file.
//!
//! The recipient is named by id (no key needed), the target goes through the same route
//! matching as `serve`, and the body through the same [`filter::decide`], so what a DPO
//! previews is what the recipient would get. Prints one JSON object:
//! `status`, `body`, `reasons`, `fields` (and `elements`, `rule_errors`, `scrubbed`), or with
//! `--format text` a table.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context};
use serde_json::json;

use crate::dry_run::{self, Decided};
use crate::rules::Policy;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, default_value = "need-to-know.toml")]
    config: PathBuf,
    /// The recipient's id, as in recipients.toml.
    #[arg(long)]
    recipient: String,
    /// The request method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The request path, optionally with its query (`/jobs/J1?fields=x`).
    #[arg(long)]
    path: String,
    /// The query string, without `?` (added to what --path holds).
    #[arg(long)]
    query: Option<String>,
    /// The upstream JSON body, from a file.
    #[arg(long)]
    body: PathBuf,
    /// A request header `name=value`; may be repeated. Only those conditions may read
    /// (x-disclosure-reference) have any effect.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// What the route's lookup NAME answers, from a file of JSON; may be repeated. A lookup
    /// not given fails, as one that fails live.
    #[arg(long = "lookup", value_name = "NAME=FILE")]
    lookups: Vec<String>,
    /// The recipient's own JSON request body, from a file: for a POST, PUT or PATCH route,
    /// checked against its `accept` and `require` as `serve` checks it.
    #[arg(long, value_name = "FILE")]
    request_body: Option<PathBuf>,
    /// The time the conditions see as `now` (RFC 3339); the current time by default.
    #[arg(long)]
    now: Option<String>,
    /// json (default) or text.
    #[arg(long, default_value = "json", value_parser = ["json", "text"])]
    format: String,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    let (settings, policy) = match super::load(&args.config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let explained = explain(&policy, args, settings.limits.max_depth)?;
    if args.format == "text" {
        print!("{}", explained.to_text());
    } else {
        let mut out = json!({
            "status": explained.status,
            "body": explained.body,
            "reasons": explained.reasons,
            "fields": explained.fields,
            "elements": explained.elements,
            "rule_errors": explained.rule_errors,
            "scrubbed": explained.scrubbed,
        });
        if !explained.received.is_empty() {
            out["received"] = json!(explained.received);
        }
        if !explained.lookups.is_empty() {
            out["lookups"] = json!(explained.lookups);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(0)
}

fn explain(policy: &Policy, args: &Args, max_depth: usize) -> anyhow::Result<Decided> {
    let recipient = policy
        .recipient(&args.recipient)
        .with_context(|| format!("no recipient {:?} in the rules", args.recipient))?;
    let bytes = std::fs::read(&args.body)
        .with_context(|| format!("cannot read {}", args.body.display()))?;
    let now = match &args.now {
        Some(text) => humantime::parse_rfc3339_weak(text)
            .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?,
        None => SystemTime::now(),
    };
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("--method {:?} is not a method", args.method))?;
    let mut headers = http::HeaderMap::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once('=') else {
            bail!("--header {h:?} is not NAME=VALUE");
        };
        let name = http::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .with_context(|| format!("--header {h:?}: bad name"))?;
        let value = http::HeaderValue::from_str(value.trim())
            .with_context(|| format!("--header {h:?}: bad value"))?;
        headers.append(name, value);
    }
    let mut lookups = std::collections::BTreeMap::new();
    for l in &args.lookups {
        let Some((name, file)) = l.split_once('=') else {
            bail!("--lookup {l:?} is not NAME=FILE");
        };
        let bytes = std::fs::read(file.trim())
            .with_context(|| format!("--lookup {l:?}: cannot read {}", file.trim()))?;
        lookups.insert(name.trim().to_owned(), bytes);
    }
    let target = match &args.query {
        Some(q) if args.path.contains('?') => format!("{}&{q}", args.path),
        Some(q) => format!("{}?{q}", args.path),
        None => args.path.clone(),
    };
    let body = match &args.request_body {
        Some(file) => Some(
            std::fs::read(file)
                .with_context(|| format!("--request-body: cannot read {}", file.display()))?,
        ),
        None => None,
    };
    let request = dry_run::Request {
        recipient,
        method,
        target,
        headers,
        now,
        lookups,
        body,
    };
    Ok(dry_run::run(&request, &bytes, max_depth))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::path::Path;

    use super::*;
    use crate::test_util::write_rules;
    use serde_json::Value;

    const RULES: &str = r#"
[[route]]
method = "GET"
path = "/jobs/{job_id}"
subjects = ["tenant.id"]
allow = ["id", "tenant.name"]

[[route.when]]
condition = "body.contractor_id == recipient.id"
reason = "assigned contractor"
allow = ["tenant.phone"]

[route.refuse]
condition = "body.objected == true"
reason = "the tenant has objected to this use"
"#;

    fn args(dir: &Path, recipient: &str, path: &str, body: &Value) -> Args {
        std::fs::write(dir.join("body.json"), body.to_string()).unwrap();
        Args {
            config: dir.join("need-to-know.toml"),
            recipient: recipient.into(),
            method: "GET".into(),
            path: path.into(),
            query: None,
            body: dir.join("body.json"),
            headers: Vec::new(),
            lookups: Vec::new(),
            request_body: None,
            now: Some("2025-03-01T00:00:00Z".into()),
            format: "json".into(),
        }
    }

    fn setup() -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        write_rules(&dir.path().join("rules"), RULES);
        let policy = Policy::load(&dir.path().join("rules")).unwrap();
        (dir, policy)
    }

    fn body(objected: bool) -> Value {
        json!({"id": "J1", "contractor_id": "acme-repairs", "objected": objected,
               "tenant": {"id": "T-1", "name": "Ada", "phone": "07700 900123", "ni": "QQ1"}})
    }

    #[test]
    fn explains_a_granted_request() {
        let (dir, policy) = setup();
        let e = explain(
            &policy,
            &args(dir.path(), "acme-repairs", "/jobs/J1", &body(false)),
            64,
        )
        .unwrap();
        assert_eq!(e.status, 200);
        assert_eq!(
            e.body,
            json!({"id": "J1", "tenant": {"name": "Ada", "phone": "07700 900123"}})
        );
        assert_eq!(e.reasons, vec!["assigned contractor"]);
        assert_eq!(e.fields["tenant.name"].why, "allow \"tenant.name\"");
        assert_eq!(
            e.fields["tenant.phone"].why,
            "when \"assigned contractor\": allow \"tenant.phone\""
        );
        assert_eq!(e.fields["tenant.ni"].why, "not in the allow list");
        assert!(!e.fields["contractor_id"].disclosed);
        let other = explain(
            &policy,
            &args(dir.path(), "brightfix", "/jobs/J1", &body(false)),
            64,
        )
        .unwrap();
        assert_eq!(
            other.fields["tenant.phone"].why,
            "when \"assigned contractor\": the condition did not hold"
        );
        let table = other.to_text();
        assert!(table.contains("tenant.phone"), "{table}");
    }

    #[test]
    fn explains_a_refusal_and_a_route_not_granted() {
        let (dir, policy) = setup();
        let e = explain(
            &policy,
            &args(dir.path(), "acme-repairs", "/jobs/J1", &body(true)),
            64,
        )
        .unwrap();
        assert_eq!(e.status, 403);
        assert_eq!(e.body["error"], "refused_by_policy");
        assert!(!e.body.to_string().contains("Ada"));
        assert_eq!(e.reasons, vec!["the tenant has objected to this use"]);
        assert!(e.fields.values().all(|d| !d.disclosed));
        let e = explain(
            &policy,
            &args(dir.path(), "acme-repairs", "/tenants/T1", &body(false)),
            64,
        )
        .unwrap();
        assert_eq!(e.status, 403);
        assert_eq!(e.body["error"], "route_not_granted");
        let e = explain(
            &policy,
            &args(dir.path(), "acme-repairs", "/jobs/J1?x=1", &body(false)),
            64,
        )
        .unwrap();
        assert_eq!(e.status, 400);
    }
}
