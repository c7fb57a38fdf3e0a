//! Hot reload of the rules: on SIGHUP, and when a file under `rules.dir` changes.
//!
//! The new rules are loaded and compiled beside the old; only a policy with no errors, whose
//! rules snapshot the ledger has kept, is swapped in, atomically, so requests in flight finish under the rules they started with and
//! a broken edit changes nothing (its `FILE:LINE` problems are logged and counted). Changes
//! are found by polling a fingerprint of the directory (names, sizes, modification times)
//! rather than with inotify, which misses edits on some mounted volumes (ConfigMaps swap a
//! symlink); a change is acted on once the fingerprint has been stable for one interval, so an
//! editor's several writes make one reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Settings;
use crate::metrics::ResultLabels;
use crate::pipeline::Gateway;

/// Loads the rules `settings` name (with their secrets) and, if they compile, puts them in use.
///
/// # Errors
///
/// The rules' problems, or the ledger's failure to keep their snapshot; the old rules stay
/// in use.
pub fn reload_rules(gateway: &Gateway, settings: &Settings) -> Result<(), crate::rules::Error> {
    let outcome = settings.load_policy().and_then(|policy| {
        if policy.generation() == gateway.policy().generation() {
            return Ok(None);
        }
        let policy = Arc::new(policy);
        // Before the swap: no request may be decided under rules whose snapshot is not kept.
        gateway.replace_policy(policy.clone()).map_err(|e| {
            crate::rules::Error(vec![crate::diag::Diagnostic::error(
                &settings.audit_path,
                0,
                e.to_string(),
            )])
        })?;
        Ok(Some(policy))
    });
    let result = if outcome.is_ok() { "ok" } else { "error" };
    gateway
        .metrics()
        .reloads
        .get_or_create(&ResultLabels {
            result: result.to_string(),
        })
        .inc();
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(policy)) => {
            tracing::info!(rules_generation = %policy.generation(), "rules reloaded");
            Ok(())
        }
        Err(e) => {
            for problem in &e.0 {
                tracing::error!("{problem}");
            }
            tracing::error!("rules reload failed; keeping the rules in use");
            Err(e)
        }
    }
}

/// A cheap summary of the files under `dir`: any edit, addition or removal changes it.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // metadata() follows symlinks, so a swapped ConfigMap link shows as a change.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Polls the rules directory every `interval` and reloads after a change has settled.
pub async fn watch_rules(gateway: Arc<Gateway>, settings: Settings, interval: Duration) {
    let dir = settings.rules_dir.clone();
    let mut applied = fingerprint(&dir);
    let mut pending: Option<Vec<_>> = None;
    loop {
        tokio::time::sleep(interval).await;
        let now = fingerprint(&dir);
        match pending.take() {
            Some(seen) if seen == now && now != applied => {
                let _ = reload_rules(&gateway, &settings);
                applied = now;
            }
            Some(seen) if seen == now => {}
            _ if now != applied => pending = Some(now),
            _ => {}
        }
    }
}
