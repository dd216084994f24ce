//! The routing the server does itself, in front of axum's router: a request whose path and
//! method are an operation's goes straight to [`crate::operation::dispatch_captured`];
//! everything else (405s, 404s, the documents) goes to the router, which answers it as before.
//!
//! Why: axum's router does more per request than klue needs. It records the path parameters
//! as an extension (a map allocated per request, the names and values copied), boxes the
//! handler's future, and moves it through several wrappers. Here the match yields the spans of
//! the parameters in the path, decoded only when the operation reads them.
//!
//! It must route exactly as axum does. It uses the same `matchit` (axum's router is built on
//! it) with the same templates, and also holds the document paths so that a static document
//! path takes precedence over an operation's template, as in axum's router. If a template
//! cannot be inserted, the whole table is dropped and axum routes everything.

use crate::operation::{OperationRuntime, PathParams, PathSpans};
use std::ops::Range;
use std::sync::Arc;

/// The operations of one path, by method.
type ByMethod = Vec<(http::Method, Arc<OperationRuntime>)>;

/// What a path template leads to.
enum Target {
    /// Operations, one per method, and the names of the template's parameters in order.
    Operations {
        by_method: ByMethod,
        keys: Vec<Arc<str>>,
    },
    /// A route of axum's router that is not an operation (the documents).
    Router,
}

/// The operations' paths, for [`OperationRoutes::find`].
pub(crate) struct OperationRoutes {
    table: matchit::Router<Target>,
}

/// The `{name}`s of a path template, in order (`{*name}` for a catch-all gives `name`).
fn template_keys(template: &str) -> Vec<Arc<str>> {
    let mut keys = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        keys.push(Arc::from(after[..end].trim_start_matches('*')));
        rest = &after[end + 1..];
    }
    keys
}

impl OperationRoutes {
    /// The table of `operations`, with `other_paths` (routes of the router that are not
    /// operations). `None` when a template does not insert (or a method is not one `http` knows):
    /// then axum routes everything.
    pub(crate) fn new(
        operations: &[Arc<OperationRuntime>],
        other_paths: &[&str],
    ) -> Option<OperationRoutes> {
        let mut by_path: Vec<(&str, ByMethod)> = Vec::new();
        for op in operations {
            let method = http::Method::from_bytes(op.method.as_str().as_bytes()).ok()?;
            let entry = (method, Arc::clone(op));
            match by_path.iter_mut().find(|(path, _)| *path == op.path) {
                Some((_, ops)) => ops.push(entry),
                None => by_path.push((op.path.as_str(), vec![entry])),
            }
        }
        let mut table = matchit::Router::new();
        for (path, by_method) in by_path {
            let keys = template_keys(path);
            table
                .insert(path, Target::Operations { by_method, keys })
                .ok()?;
        }
        for path in other_paths {
            table.insert(*path, Target::Router).ok()?;
        }
        Some(OperationRoutes { table })
    }

    /// The operation for `method` on `path`, with its path parameters; `None` when the router
    /// has to answer (no such path or method, or a document).
    pub(crate) fn find(
        &self,
        method: &http::Method,
        path: &str,
    ) -> Option<(&Arc<OperationRuntime>, PathParams)> {
        let matched = self.table.at(path).ok()?;
        let Target::Operations { by_method, keys } = matched.value else {
            return None;
        };
        let (_, op) = by_method.iter().find(|(m, _)| m == method)?;
        let mut captures = PathSpans::new();
        for (key, (_, value)) in keys.iter().zip(matched.params.iter()) {
            let span = span_of(path, value);
            // matchit's values are slices of `path`; anything else is left to the router.
            if path.get(span.clone()) != Some(value) {
                return None;
            }
            captures.push((Arc::clone(key), span));
        }
        Some((op, PathParams::Captured(captures)))
    }
}

/// Where `part` (a slice of `whole`) lies in `whole`.
fn span_of(whole: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_keys_in_order() {
        let keys = template_keys("/a/{x}/b/{y}/{*rest}");
        let keys: Vec<&str> = keys.iter().map(|k| &**k).collect();
        assert_eq!(keys, ["x", "y", "rest"]);
        assert!(template_keys("/ping").is_empty());
    }

    #[test]
    fn spans_point_into_the_path() {
        let path = "/v1/hello/bob%20b";
        let Some(value) = path.strip_prefix("/v1/hello/") else {
            panic!("no prefix");
        };
        assert_eq!(&path[span_of(path, value)], "bob%20b");
    }
}
