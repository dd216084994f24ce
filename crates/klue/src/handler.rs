//! The dynamic handler interface: validated parameters and body in, status and JSON out.
//! Generated server traits (klue-codegen) are adapters onto this interface.

use crate::context::RequestContext;
use crate::error::ApiError;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
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
    pub path: Params,
    pub query: Params,
    /// Header parameters, keyed by the name as declared in the spec.
    pub headers: Params,
    pub cookies: Params,
    /// The JSON body (or a form body decoded to an object), when there is one.
    pub body: Option<Value>,
}

/// The parameters of one location (path, query, headers or cookies), by name, in the spec's
/// order. An operation has a few per location, so they are kept in a short list searched in
/// order: no hashing, one allocation (a `serde_json::Map` hashed each name twice and made
/// three allocations for one path parameter, about 4 % of `GET /v1/hello`). Not inline: a
/// `Value` is 80 bytes, and the request is moved a few times.
/// Serializes as a JSON object; [`Params::into_map`] gives a `serde_json::Map`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(Arc<str>, Value)>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| **k == *name)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.position(name).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`; the value it had, if any.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: Value) -> Option<Value> {
        let name = name.into();
        match self.get_mut(&name) {
            Some(old) => Some(std::mem::replace(old, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// Takes `name` out.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let index = self.position(name)?;
        Some(self.0.remove(index).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names and values, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// As a JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

impl<K: Into<Arc<str>>> FromIterator<(K, Value)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (name, value) in iter {
            params.insert(name, value);
        }
        params
    }
}

impl From<Params> for Value {
    fn from(params: Params) -> Value {
        Value::Object(params.into_map())
    }
}

impl Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_act_as_a_small_json_object() {
        let mut params: Params = [("b", Value::from(1)), ("a", Value::from("x"))]
            .into_iter()
            .collect();
        assert_eq!(params.len(), 2);
        assert_eq!(params.get("a"), Some(&Value::from("x")));
        assert_eq!(params.get("c"), None);
        // Setting a name again replaces its value in place.
        assert_eq!(params.insert("b", Value::from(2)), Some(Value::from(1)));
        assert_eq!(params.len(), 2);
        // Serialized as an object, in the order the names were first set.
        assert_eq!(
            serde_json::to_string(&params).unwrap_or_default(),
            r#"{"b":2,"a":"x"}"#
        );
        assert_eq!(
            Value::from(params.clone()),
            serde_json::json!({"a": "x", "b": 2})
        );
        assert_eq!(params.remove("b"), Some(Value::from(2)));
        assert_eq!(params.remove("b"), None);
        assert!(params.contains_key("a") && !params.contains_key("b"));
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [("a", &Value::from("x"))]
        );
        assert!(params.remove("a").is_some() && params.is_empty());
    }
}
