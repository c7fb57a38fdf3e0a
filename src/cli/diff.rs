//! `diff`: what a rules change would do, before it is deployed.
//!
//! First the rules themselves, old against new ([`rules::changes`]): every grant, condition,
//! refusal, route, recipient, credential and rate limit gained or lost, whether or not a test
//! case reaches it. Then, as a concrete second check, every policy test case (those of the new
//! rules and of the old, so a deleted case still counts), and each case's request again with
//! every `--body` given, decided under both rule sets through [`dry_run::run`]: the paths each
//! recipient type would gain or lose, and the refusals that would appear or vanish. Last, the
//! routes no test case reaches. Any widening exits 1 unless `--accept` is given: widening
//! disclosure must be a deliberate act.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::casebook::{self, Case};
use crate::config::Settings;
use crate::dry_run;
use crate::rules::{self, Policy};

pub fn run(config: &Path, against: &Path, bodies: &[PathBuf], accept: bool) -> anyhow::Result<u8> {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(e) => return Ok(super::config_problems(e.0.iter().map(ToString::to_string))),
    };
    let mut old_settings = settings.clone();
    old_settings.rules_dir = against.to_path_buf();
    let (new, old) = match (
        super::load_offline(&settings),
        super::load_offline(&old_settings),
    ) {
        (Ok(n), Ok(o)) => (n, o),
        (n, o) => {
            let mut lines = Vec::new();
            for e in [n.err(), o.err()].into_iter().flatten() {
                lines.extend(e.0.iter().map(ToString::to_string));
            }
            return Ok(super::config_problems(lines));
        }
    };
    let mut files: Vec<PathBuf> = casebook::files(&settings.rules_dir);
    files.extend(casebook::files(against));
    let cases = match casebook::load(&files) {
        Ok(c) => c,
        Err(p) => return Ok(super::config_problems(p.iter().map(ToString::to_string))),
    };
    // Each extra body is decided for every case's request, as if the upstream had sent it.
    let mut extra = Vec::new();
    for path in bodies {
        let body = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --body {}: {e}", path.display()))?;
        for case in &cases {
            let mut with = case.clone();
            with.name = format!("{} with the body of {}", case.name, path.display());
            with.body.clone_from(&body);
            extra.push(with);
        }
    }
    let mut cases = cases;
    cases.extend(extra);

    let rule_changes = rules::changes::between(&old, &new);
    println!("# the rules, old against new");
    for change in &rule_changes {
        println!(
            "{}{}",
            if change.widens { "widens: " } else { "" },
            change.text
        );
    }
    let rules_widened = rule_changes.iter().filter(|c| c.widens).count();
    println!(
        "{} rule change(s), {rules_widened} widening disclosure",
        rule_changes.len()
    );

    // The same case may be in both directories: one line per distinct change.
    println!("# the policy test cases, decided under both");
    let mut changes = std::collections::BTreeMap::new();
    for case in &cases {
        for change in compare(&old, &new, case, settings.limits.max_depth) {
            changes.insert(change.text, change.gain);
        }
    }
    let gained = changes.values().filter(|&&gain| gain).count();
    for line in changes.keys() {
        println!("{line}");
    }
    println!(
        "{} change(s) over {} case(s), {gained} widening disclosure",
        changes.len(),
        cases.len()
    );

    for route in untested(&new, &cases, settings.limits.max_depth) {
        println!("untested: {route}");
    }
    if (gained > 0 || rules_widened > 0) && !accept {
        println!("disclosure widens: review the lines above, then run again with --accept");
        return Ok(1);
    }
    Ok(0)
}

/// The routes of `policy` that no case reaches, as `TYPE METHOD TEMPLATE`: a change to one
/// is checked by the rules comparison alone.
fn untested(policy: &Policy, cases: &[Case], max_depth: usize) -> Vec<String> {
    let reached: BTreeSet<(String, String, String)> = cases
        .iter()
        .filter_map(|case| {
            let recipient = policy.recipient(&case.recipient)?;
            let route = case.decide(recipient, max_depth).route?;
            Some((recipient.kind.name.clone(), case.method.to_string(), route))
        })
        .collect();
    policy
        .types()
        .flat_map(|kind| {
            kind.routes.iter().map(move |route| {
                (
                    kind.name.clone(),
                    route.method.to_string(),
                    route.template.to_string(),
                )
            })
        })
        .filter(|key| !reached.contains(key))
        .map(|(kind, method, template)| format!("{kind} {method} {template}"))
        .collect()
}

struct Change {
    gain: bool,
    text: String,
}

/// The differences for one case between the old and the new rules.
fn compare(old: &Policy, new: &Policy, case: &Case, max_depth: usize) -> Vec<Change> {
    let decide = |policy: &Policy| {
        let recipient = policy.recipient(&case.recipient)?;
        Some((
            recipient.kind.name.clone(),
            case.decide(recipient, max_depth),
        ))
    };
    let (before, after) = (decide(old), decide(new));
    let kind = after
        .as_ref()
        .or(before.as_ref())
        .map_or_else(|| case.recipient.clone(), |(k, _)| k.clone());
    let route = after
        .as_ref()
        .and_then(|(_, d)| d.route.clone())
        .or_else(|| before.as_ref().and_then(|(_, d)| d.route.clone()))
        .unwrap_or_else(|| case.target.clone());
    let on = format!("{} {route}", case.method);
    let empty = BTreeSet::new();
    let sent = |d: &Option<(String, dry_run::Decided)>| -> BTreeSet<String> {
        match d {
            Some((_, d)) if d.status < 300 => d.disclosed.clone(),
            _ => empty.clone(),
        }
    };
    let (was, now) = (sent(&before), sent(&after));
    let mut changes = Vec::new();
    for path in now.difference(&was) {
        changes.push(Change {
            gain: true,
            text: format!("{kind} gains {path} on {on}"),
        });
    }
    for path in was.difference(&now) {
        changes.push(Change {
            gain: false,
            text: format!("{kind} loses {path} on {on}"),
        });
    }
    let status = |d: &Option<(String, dry_run::Decided)>| d.as_ref().map(|(_, d)| d.status);
    let (s_before, s_after) = (status(&before), status(&after));
    if s_before != s_after {
        let describe = |s: Option<u16>| match s {
            None => "no such recipient".to_string(),
            Some(s) => s.to_string(),
        };
        let refusal_vanishes =
            s_before.is_some_and(|s| s >= 400) && s_after.is_some_and(|s| s < 300);
        changes.push(Change {
            gain: refusal_vanishes,
            text: format!(
                "{kind} on {on}: status {} becomes {} ({})",
                describe(s_before),
                describe(s_after),
                case.name
            ),
        });
    }
    changes
}
