//! The dynamic handler interface: validated parameters and body in, status and JSON out.
//! Generated server traits (klue-codegen) are adapters onto this interface.

use crate::context::RequestContext;
use crate::error::ApiError;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A validated request: every declared parameter coerced to its schema's type (defaults
/// applied), keyed by its name as in the spec; the body parsed and validated.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub ctx: RequestContext,
    pub path: Map<String, Value>,
    pub query: Map<String, Value>,
    /// Header parameters, keyed by the name as declared in the spec.
    pub headers: Map<String, Value>,
    pub cookies: Map<String, Value>,
    /// The JSON body (or a form body decoded to an object), when there is one.
    pub body: Option<Value>,
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The JSON body of a reply made with [`Reply::json`]; `None` for a response without a
    /// body, and for the replies of generated handlers, whose typed body is already
    /// serialized (see [`Reply::body_bytes`]).
    pub body: Option<Value>,
    pub headers: HeaderMap,
    /// A body serialized by the generated code, exactly as `body` would serialize.
    serialized: Option<bytes::Bytes>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            headers: HeaderMap::new(),
            serialized: None,
        }
    }

    /// An answer without a body.
    pub fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: None,
            headers: HeaderMap::new(),
            serialized: None,
        }
    }

    /// A JSON answer whose body is already serialized (`json` must be valid JSON).
    pub(crate) fn serialized(status: StatusCode, json: impl Into<bytes::Bytes>) -> Self {
        Reply {
            status,
            body: None,
            headers: HeaderMap::new(),
            serialized: Some(json.into()),
        }
    }

    /// Whether the reply has a body.
    pub fn has_body(&self) -> bool {
        self.body.is_some() || self.serialized.is_some()
    }

    /// The body as the bytes to send, if any.
    pub fn body_bytes(&self) -> Result<Option<bytes::Bytes>, serde_json::Error> {
        match (&self.serialized, &self.body) {
            (Some(bytes), _) => Ok(Some(bytes.clone())),
            (None, Some(body)) => serde_json::to_vec(body).map(|v| Some(bytes::Bytes::from(v))),
            (None, None) => Ok(None),
        }
    }

    /// [`Reply::body_bytes`], moving a serialized body out instead of sharing it: the first
    /// clone of a `Bytes` made from a `Vec` allocates, and the reply is dropped next anyway.
    pub(crate) fn take_body_bytes(&mut self) -> Result<Option<bytes::Bytes>, serde_json::Error> {
        match self.serialized.take() {
            Some(bytes) => Ok(Some(bytes)),
            None => self.body_bytes(),
        }
    }

    /// The body as JSON, if any (parsed back when it was serialized by generated code).
    pub fn body_value(&self) -> Result<Option<Value>, serde_json::Error> {
        match (&self.serialized, &self.body) {
            (Some(bytes), _) => serde_json::from_slice(bytes).map(Some),
            (None, body) => Ok(body.clone()),
        }
    }
}

/// What a handler returns.
pub type HandlerResult = Result<Reply, ApiError>;

/// The boxed future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// One operation's implementation.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, request: Request) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, request: Request) -> HandlerFuture {
        Box::pin(self(request))
    }
}

/// Handlers of one API, keyed by operation id.
#[derive(Clone, Default)]
pub struct Handlers {
    by_operation: HashMap<String, Arc<dyn Handler>>,
}

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `handler` to the operation with this id.
    pub fn insert(&mut self, operation_id: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.by_operation
            .insert(operation_id.into(), Arc::new(handler));
        self
    }

    /// Builder-style [`Handlers::insert`].
    pub fn with(mut self, operation_id: impl Into<String>, handler: impl Handler) -> Self {
        self.insert(operation_id, handler);
        self
    }

    pub fn get(&self, operation_id: &str) -> Option<&Arc<dyn Handler>> {
        self.by_operation.get(operation_id)
    }

    pub fn operation_ids(&self) -> impl Iterator<Item = &str> {
        self.by_operation.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.operation_ids().collect();
        ids.sort_unstable();
        f.debug_struct("Handlers")
            .field("operations", &ids)
            .finish()
    }
}
