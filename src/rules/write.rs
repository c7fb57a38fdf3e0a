//! `accept` and `[[route.require]]` compiled into a [`Write`], with every misuse reported at
//! its line.
//!
//! A POST, PUT or PATCH route must say what the recipient may send: a write route without
//! `accept` would forward any body, so it is an error, not a default. A GET or DELETE
//! carries no body, so `accept` or `require` there is an error too. The lookups of a write
//! route run before forwarding, so neither they nor a `require` may read the upstream
//! `body`, which does not exist yet; they read `request.body` instead.

use toml::Spanned;

use super::raw;
use super::site::Source;
use super::Loader;
use crate::filter::lookup::Lookup;
use crate::filter::write::{Require, Write};

/// Whether `method` sends a body the upstream acts on.
pub fn is_write(method: &http::Method) -> bool {
    [http::Method::POST, http::Method::PUT, http::Method::PATCH].contains(method)
}

/// The route's write rules: `Some(None)` on a read route, `None` after reporting a problem.
pub(super) fn compile(
    loader: &mut Loader,
    source: &Source,
    spanned: &Spanned<raw::Route>,
    method: Option<&http::Method>,
    lookups: Option<&[Lookup]>,
) -> Option<Option<Write>> {
    let file = &source.path;
    let raw = spanned.get_ref();
    let Some(method) = method else {
        return None; // reported where the method is
    };
    if !is_write(method) {
        let mut ok = true;
        if let Some(accept) = &raw.accept {
            loader.error(
                file,
                source.line(accept),
                format!("accept on a {method} route: only a POST, PUT or PATCH carries a body to accept"),
            );
            ok = false;
        }
        if let Some(require) = raw.require.first() {
            loader.error(
                file,
                source.line(require),
                format!("require on a {method} route: only a POST, PUT or PATCH is checked before forwarding (use refuse)"),
            );
            ok = false;
        }
        return ok.then_some(None);
    }
    let mut ok = true;
    let accept = match &raw.accept {
        None => {
            loader.error(
                file,
                source.line(spanned),
                format!("a {method} route needs accept = [...]: the request-body paths the recipient may send"),
            );
            None
        }
        Some(list) => loader.paths(source, "accept", list.get_ref()),
    };
    for (lookup, written) in lookups.unwrap_or_default().iter().zip(&raw.lookup) {
        if lookup.reads_body() {
            loader.error(
                file,
                source.line(&written.get_ref().path),
                format!("lookup {:?} reads body: on a {method} route lookups run before forwarding, when there is no upstream body yet (read request.body)", lookup.name()),
            );
            ok = false;
        }
    }
    let mut require = Vec::new();
    for r in &raw.require {
        let at = source.line(r);
        let r = r.get_ref();
        let condition = loader.expr(source, "require condition", &r.condition, false);
        let reason = loader.reason(source, &r.reason);
        if condition.as_ref().is_some_and(|c| c.uses().body) {
            loader.error(
                file,
                source.line(&r.condition),
                "require condition reads body: a require is checked before forwarding, when there is no upstream body yet (read request.body)",
            );
            ok = false;
        }
        match (condition, reason) {
            (Some(condition), Some(reason)) => require.push(Require {
                condition,
                reason,
                site: format!("{}:{at} require", file.display()),
            }),
            _ => ok = false,
        }
    }
    let accept = accept?;
    ok.then_some(Some(Write { accept, require }))
}
