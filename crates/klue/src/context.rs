//! What a handler knows about the request besides its parameters: the request id and, for
//! authenticated operations, the verified claims and the token (to forward downstream).

use serde_json::{Map, Value};
use std::sync::Arc;

/// Verified JWT claims, every claim kept as JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// `aud`, as a list (a single string audience is a list of one).
    pub fn audience(&self) -> Vec<&str> {
        match self.0.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `exp`, seconds since the epoch.
    pub fn expires_at(&self) -> Option<i64> {
        self.0.get("exp").and_then(Value::as_i64)
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.0.get("iss").and_then(Value::as_str)
    }

    /// Any claim, as JSON.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// The per-request context handed to every handler.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// `X-Request-Id` as received, or generated.
    pub request_id: Arc<str>,
    /// The operation being served.
    pub operation_id: Arc<str>,
    /// Verified claims, for operations that need auth.
    pub claims: Option<Arc<Claims>>,
    /// The verified bearer token, so clients can forward the caller's identity.
    pub token: Option<Arc<str>>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `fut` with `ctx` as the current request context (what generated clients read to
/// propagate `X-Request-Id` and forward the token).
pub fn scope<F: std::future::Future>(
    ctx: RequestContext,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<RequestContext, F> {
    CURRENT.scope(ctx, fut)
}

/// The context of the request being handled on this task, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|c| c.request_id.to_string()).ok()
}
