//! The outer request layer: `X-Request-Id` (taken from the request or generated, and echoed)
//! and one log line per request (method, path, status, latency, request id, error id).

use crate::error::ErrorAnswered;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue};
use rand::RngExt;
use rand::rngs::SmallRng;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

/// The request id of a request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

pub(crate) const X_REQUEST_ID: &str = "x-request-id";

/// [`X_REQUEST_ID`] as a header name (a `&str` name is parsed on every use).
pub(crate) const X_REQUEST_ID_NAME: HeaderName = HeaderName::from_static(X_REQUEST_ID);

thread_local! {
    /// Request ids must be unique, not unpredictable: a fast generator per thread, seeded
    /// from the thread's OS-seeded generator, instead of the cryptographic one behind
    /// `Uuid::new_v4` (a ChaCha block every four ids, about 150 instructions per request).
    static REQUEST_IDS: RefCell<SmallRng> = RefCell::new(rand::make_rng());
}

/// A fresh request id: a v4 UUID (random bits, version and variant set), hyphenated, lower
/// case.
fn fresh_request_id() -> Arc<str> {
    let bits: u128 = REQUEST_IDS.with_borrow_mut(|rng| rng.random());
    let id = uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    Arc::from(&*id.hyphenated().encode_lower(&mut buffer))
}

/// A request id from the client is kept when it is short visible ASCII; otherwise a UUID.
/// Also whether klue made it.
fn accept_request_id(value: Option<&HeaderValue>) -> (Arc<str>, bool) {
    value
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| (fresh_request_id(), true), |v| (Arc::from(v), false))
}

/// The request id the middleware assigned (a fresh one if the middleware did not run).
pub(crate) fn request_id_of(request: &Request) -> Arc<str> {
    request
        .extensions()
        .get::<RequestId>()
        .map(|r| Arc::clone(&r.0))
        .unwrap_or_else(fresh_request_id)
}

/// Why a request's `Host` is unacceptable (RFC 9112 §3.2: an HTTP/1.1 request without one,
/// any request with two, or a value that is not `host[:port]` get a 400): two parts of a
/// chain of servers could otherwise route or check the request by different hosts.
pub(crate) fn host_problem<B>(request: &http::Request<B>) -> Option<&'static str> {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Some("the request has more than one Host header"),
        (None, _) if request.version() == http::Version::HTTP_11 => {
            Some("an HTTP/1.1 request must have a Host header")
        }
        (Some(host), None) if !is_host(host) => Some("the Host header is not a host[:port]"),
        _ => None,
    }
}

/// Whether `value` is `uri-host [":" port]`, or empty (allowed when the target has no host).
fn is_host(value: &HeaderValue) -> bool {
    value.is_empty()
        || value
            .to_str()
            .is_ok_and(|host| !host.contains('@') && host.parse::<http::uri::Authority>().is_ok())
}

/// The 400 for a [`host_problem`].
pub(crate) fn host_error(problem: &'static str) -> crate::error::ApiError {
    crate::error::ApiError::invalid(
        format!("Invalid header parameter 'Host': {problem}"),
        vec![crate::error::FieldError {
            location: crate::error::FieldLocation::Header,
            name: Some("Host".to_owned()),
            pointer: None,
            message: problem.to_owned(),
        }],
    )
}

/// `METHOD /path` (the query is left out: it may carry secrets).
pub(crate) fn request_line(request: &Request) -> String {
    format!("{} {}", request.method(), request.uri().path())
}

pub(crate) async fn request_id_and_log(mut request: Request, next: Next) -> Response {
    let started = begin(&request);
    started.record_in(&mut request);
    let response = next.run(request).await;
    finish(started, response)
}

/// What the request line of the log needs from the request, kept while it is served.
pub(crate) struct Started {
    /// Wall-clock time, so that the log line's timestamp and latency come from one clock read
    /// at the end (a clock step during the request skews that one latency).
    at: SystemTime,
    request_id: Arc<str>,
    /// `request_id` is a UUID klue made (not the client's).
    request_id_made: bool,
    method: http::Method,
    /// The URI (reference-counted) rather than a copy of its path.
    uri: http::Uri,
}

impl Started {
    /// The request id, for what is handed the request without going through axum.
    pub(crate) fn request_id(&self) -> &Arc<str> {
        &self.request_id
    }

    /// Puts the request id into the request's extensions, where axum's routes read it.
    pub(crate) fn record_in<B>(&self, request: &mut http::Request<B>) {
        request
            .extensions_mut()
            .insert(RequestId(Arc::clone(&self.request_id)));
    }
}

/// The request half: the request id, taken or generated ([`Started::record_in`] puts it
/// where axum's routes read it).
pub(crate) fn begin<B>(request: &http::Request<B>) -> Started {
    let at = SystemTime::now();
    let (request_id, request_id_made) = accept_request_id(request.headers().get(X_REQUEST_ID_NAME));
    Started {
        at,
        request_id,
        request_id_made,
        method: request.method().clone(),
        uri: request.uri().clone(),
    }
}

/// The response half: echo the request id and write the request's log line.
pub(crate) fn finish<B>(started: Started, response: http::Response<B>) -> http::Response<B> {
    finish_with(started, response, IdSlot::Absent)
}

/// Where [`finish_with`] puts the request id.
pub(crate) enum IdSlot {
    /// Inserted under its name.
    Absent,
    /// Into the `x-request-id` placeholder that is the last of the answer's headers (a
    /// clone of prepared headers, see `layers::Front::new`): no hashing of the name.
    LastPlaceholder,
}

/// [`finish`], with the request id put where `slot` says.
pub(crate) fn finish_with<B>(
    started: Started,
    mut response: http::Response<B>,
    slot: IdSlot,
) -> http::Response<B> {
    let Started {
        at,
        request_id,
        request_id_made,
        method,
        uri,
    } = started;
    let path = uri.path();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        let headers = response.headers_mut();
        let placeholder = match slot {
            IdSlot::LastPlaceholder => headers
                .iter_mut()
                .last()
                .filter(|(name, _)| *name == X_REQUEST_ID_NAME),
            IdSlot::Absent => None,
        };
        match placeholder {
            Some((_, placeholder)) => *placeholder = value,
            None => {
                headers.insert(X_REQUEST_ID_NAME, value);
            }
        }
    }
    let status = response.status().as_u16();
    let now = SystemTime::now();
    let latency = now.duration_since(at).unwrap_or_default();
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let error = response.extensions().get::<ErrorAnswered>();
    crate::logfmt::log_request(
        now,
        &crate::logfmt::RequestLine {
            method: &method,
            path,
            status,
            latency_us,
            request_id: &request_id,
            request_id_made,
            error: error.map(|e| (&*e.code, &*e.error_id)),
        },
    );
    response
}
