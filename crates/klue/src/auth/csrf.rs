//! Cross-site request forgery through the `token` cookie.
//!
//! A browser attaches cookies to any request a page of another site makes, and it sends a
//! `fetch(url, {method: "POST", mode: "no-cors", credentials: "include", body})` without
//! asking the server first (no CORS preflight) as long as the body's `Content-Type` is one a
//! plain HTML form could send (or none). So when a request's credentials come from the cookie
//! and it carries a body, the body is accepted only when one of these holds:
//!
//! - its `Content-Type` is JSON (`application/json`, `application/*+json`): a browser asks
//!   the server before sending such a request across sites, and klue's CORS answer does not
//!   allow credentials;
//! - its `Origin` is this service's own (scheme default ports aside, the same host and port
//!   as the `Host` the request was sent to).
//!
//! klue answers CORS requests from any origin (`*`), so there is no list of trusted origins
//! to accept beyond the service's own. Credentials from the `Authorization` header are not
//! concerned: a browser never adds that header by itself.

use crate::error::{ApiError, codes, truncate_input};
use http::header;
use klue_spec::is_json_media_type;

/// Whether the body of a request whose credentials came from the `token` cookie may be read:
/// `Ok` when its `content_type` (the media type, lower case, without parameters) is JSON or
/// its `Origin` is the service's own; otherwise the 403 `CSRF_REJECTED` to answer, which says
/// why.
pub(crate) fn check_cookie_body(
    parts: &http::request::Parts,
    content_type: Option<&str>,
) -> Result<(), ApiError> {
    if content_type.is_some_and(is_json_media_type) {
        return Ok(());
    }
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str));
    let why = match (&origin, host) {
        (Some(origin), Some(host)) if same_origin(origin, host) => return Ok(()),
        (Some(origin), _) => format!(
            "its Origin ({}) is not this service's",
            truncate_input(origin)
        ),
        (None, _) => "it has no Origin header".to_owned(),
    };
    let content_type = content_type.map_or_else(
        || "no Content-Type".to_owned(),
        |ct| format!("Content-Type {}", truncate_input(ct)),
    );
    Err(ApiError::new(
        403,
        codes::CSRF_REJECTED,
        format!(
            "Refused as a possible cross-site request: the credentials come from the token \
             cookie, the body has {content_type} (not JSON) and {why}. Send the body as \
             application/json, or the token in the Authorization header"
        ),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (a `Host` header value), ASCII case
/// ignored and a port that is the scheme's default left out on either side.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return false;
    };
    let without_default = |authority: &str| -> String {
        let authority = authority.to_ascii_lowercase();
        match authority.rsplit_once(':') {
            // Not the inside of an IPv6 literal: those end with `]`.
            Some((name, port)) if port == default_port && !name.is_empty() => name.to_owned(),
            _ => authority,
        }
    };
    !authority.is_empty() && without_default(authority) == without_default(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::post("/items");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match builder.body(()) {
            Ok(request) => request.into_parts().0,
            Err(e) => panic!("bad test request: {e}"),
        }
    }

    #[test]
    fn origins_match_the_host() {
        assert!(same_origin("https://api.example.com", "api.example.com"));
        assert!(same_origin(
            "https://API.example.com",
            "api.example.com:443"
        ));
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(same_origin("http://[::1]", "[::1]:80"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("https://evil.example", "api.example.com"));
        assert!(!same_origin(
            "https://api.example.com.evil.example",
            "api.example.com"
        ));
        assert!(!same_origin("null", "api.example.com"));
        assert!(!same_origin("https://api.example.com/", "api.example.com"));
        assert!(!same_origin("ftp://api.example.com", "api.example.com"));
        assert!(!same_origin("https://", ""));
    }

    #[test]
    fn a_cookie_body_needs_json_or_the_own_origin() {
        let host = ("host", "api.example.com");
        assert!(check_cookie_body(&parts(&[host]), Some("application/json")).is_ok());
        assert!(check_cookie_body(&parts(&[host]), Some("application/merge-patch+json")).is_ok());
        let own = ("origin", "https://api.example.com");
        assert!(check_cookie_body(&parts(&[host, own]), None).is_ok());
        assert!(check_cookie_body(&parts(&[host, own]), Some("text/plain")).is_ok());
        for (headers, content_type, why) in [
            (
                vec![host],
                None,
                "no Content-Type (not JSON) and it has no Origin header",
            ),
            (
                vec![host, ("origin", "https://evil.example")],
                Some("text/plain"),
                "Content-Type text/plain (not JSON) and its Origin (https://evil.example)",
            ),
            (
                vec![("origin", "https://api.example.com")],
                Some("application/x-www-form-urlencoded"),
                "is not this service's",
            ),
        ] {
            match check_cookie_body(&parts(&headers), content_type) {
                Ok(()) => panic!("accepted {headers:?} {content_type:?}"),
                Err(e) => {
                    assert_eq!(e.status.as_u16(), 403);
                    assert_eq!(e.code, "CSRF_REJECTED");
                    assert!(e.description.contains(why), "{}", e.description);
                }
            }
        }
    }
}
