//! The one error every klue service answers with, compatible with klue-microservice:
//! `{"status", "error", "error_description", "error_id", "request_id", "user_message"?, "errors"?}`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Error codes klue itself answers with.
pub mod codes {
    pub const INVALID_PARAMETER: &str = "INVALID_PARAMETER";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const HEADERS_TOO_LARGE: &str = "REQUEST_HEADER_FIELDS_TOO_LARGE";
    pub const UNHANDLED_SERVER_ERROR: &str = "UNHANDLED_SERVER_ERROR";
    pub const BAD_RESPONSE: &str = "BAD_RESPONSE";
    /// 503: the handler did not answer within the request timeout.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// 408: the client did not send the whole request body within the body-read timeout
    /// (a client fault, so a 4xx, and not reported as a server error).
    pub const BODY_READ_TIMEOUT: &str = "BODY_READ_TIMEOUT";
    pub const AUTHORIZATION_HEADER_MISSING: &str = "AUTHORIZATION_HEADER_MISSING";
    pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    /// 403: a body sent with the `token` cookie's credentials, neither as JSON nor from the
    /// service's own origin (a possible cross-site request forgery).
    pub const CSRF_REJECTED: &str = "CSRF_REJECTED";
}

/// The most characters of a client's input that an error answer repeats: a longer value is
/// cut there and ends with `…`. Without a bound, an invalid 1 MiB string would come back
/// several times over (in `error_description` and in `errors[].message`).
pub const ECHO_LIMIT: usize = 100;

/// `input` as an error answer may repeat it: at most [`ECHO_LIMIT`] characters (never a
/// split UTF-8 character), followed by `…` when it was cut. For handlers too, when their
/// error descriptions name what the client sent.
pub fn truncate_input(input: &str) -> Cow<'_, str> {
    truncate_chars(input, ECHO_LIMIT)
}

/// `text` cut to `limit` characters, with `…` when it was cut.
pub(crate) fn truncate_chars(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((at, _)) => {
            let mut cut = String::with_capacity(at + '…'.len_utf8());
            cut.push_str(&text[..at]);
            cut.push('…');
            Cow::Owned(cut)
        }
    }
}

/// Where a failed validation was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldLocation {
    Path,
    Query,
    Header,
    Cookie,
    Body,
}

/// One failed validation: a parameter by name, or a body value by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    #[serde(rename = "in")]
    pub location: FieldLocation,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pointer: Option<String>,
    pub message: String,
}

/// An error answer. Handlers return it for their own codes (`ApiError::new(404,
/// "ITEM_NOT_FOUND", "...")`); the runtime uses it for everything it refuses.
///
/// The `cause` is logged with the error id and handed to the error reporter, never sent.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub description: String,
    pub user_message: Option<String>,
    pub errors: Vec<FieldError>,
    /// Extra response headers (e.g. `Allow`, `WWW-Authenticate`).
    pub headers: http::HeaderMap,
    /// The internal cause of a 5xx: logged and reported, never sent to the client.
    pub cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with a status, an UPPERCASE code and a description.
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        description: impl Into<String>,
    ) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.into(),
            description: description.into(),
            user_message: None,
            errors: Vec::new(),
            headers: http::HeaderMap::new(),
            cause: None,
        }
    }

    /// 400 INVALID_PARAMETER with one entry per failing field.
    pub fn invalid(description: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut e = ApiError::new(400, codes::INVALID_PARAMETER, description);
        e.errors = errors;
        e
    }

    /// 500 UNHANDLED_SERVER_ERROR carrying an internal cause (logged, never sent).
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = ApiError::new(
            500,
            codes::UNHANDLED_SERVER_ERROR,
            "The server failed to handle this request",
        );
        e.cause = Some(cause.into());
        e
    }

    pub fn with_user_message(mut self, message: impl Into<String>) -> Self {
        self.user_message = Some(message.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// The JSON body, for a given error id and request id.
    pub fn body(&self, error_id: &str, request_id: &str) -> ErrorBody {
        ErrorBody {
            status: self.status.as_u16(),
            error: self.code.to_string(),
            error_description: self.description.clone(),
            error_id: Some(error_id.to_owned()),
            request_id: Some(request_id.to_owned()),
            user_message: self.user_message.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.description
        )
    }
}

impl std::error::Error for ApiError {}

/// The serialized error body. Also what generated clients decode error answers into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub error: String,
    pub error_description: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
}

/// Put in an error response's extensions, so the request log line can name the error id
/// and code.
#[derive(Debug, Clone)]
pub struct ErrorAnswered {
    pub error_id: String,
    pub code: String,
}

impl ApiError {
    /// Turns the error into its JSON response with a fresh error id. Logging and reporting are
    /// the caller's: the runtime logs one line per request (with the error id) and reports 5xx.
    pub fn into_response_for(self, request_id: &str) -> Response {
        let error_id = uuid::Uuid::new_v4().to_string();
        self.into_response_with_id(request_id, error_id)
    }

    /// Like [`ApiError::into_response_for`], with a given error id.
    pub fn into_response_with_id(self, request_id: &str, error_id: String) -> Response {
        let body = self.body(&error_id, request_id);
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = Response::new(axum::body::Body::from(bytes));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        response.extensions_mut().insert(ErrorAnswered {
            error_id,
            code: self.code.into_owned(),
        });
        response
    }
}

impl IntoResponse for ApiError {
    /// Without a request id at hand; the runtime uses [`ApiError::into_response_for`].
    fn into_response(self) -> Response {
        let request_id = crate::context::current_request_id().unwrap_or_default();
        self.into_response_for(&request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_cut_by_characters_with_an_ellipsis() {
        assert_eq!(truncate_input("short"), "short");
        let exact = "a".repeat(ECHO_LIMIT);
        assert!(matches!(truncate_input(&exact), Cow::Borrowed(_)));
        let long = "é".repeat(ECHO_LIMIT + 1);
        let cut = truncate_input(&long);
        assert_eq!(cut.chars().count(), ECHO_LIMIT + 1);
        assert!(cut.ends_with("é…"), "{cut}");
        // Four-byte characters are never split.
        let emoji = "😀".repeat(3 * ECHO_LIMIT);
        assert_eq!(
            truncate_input(&emoji),
            format!("{}…", "😀".repeat(ECHO_LIMIT))
        );
    }
}
