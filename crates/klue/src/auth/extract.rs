//! Where the token comes from: the `Authorization: Bearer <jwt>` header, else a `token`
//! cookie holding `Bearer <jwt>` URL-encoded (as klue-microservice web clients set it) or the
//! bare JWT.
//!
//! The rules and the messages are klue-microservice's (`authenticate_http_request`).

use super::failure::{self, AuthError};
use http::header;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// The name of the cookie klue-microservice web clients keep the token in.
pub const TOKEN_COOKIE: &str = "token";

/// The bearer token of a request, or why there is none (a 401 to answer).
///
/// An empty `Authorization` header counts as absent (klue-microservice then looks at the
/// cookie too). The scheme is matched case-insensitively.
pub fn bearer_token(parts: &http::request::Parts) -> Result<String, AuthError> {
    bearer_token_of(parts).map(Cow::into_owned)
}

/// [`bearer_token`], borrowed from the request when it can be (the usual header case).
pub(crate) fn bearer_token_of(parts: &http::request::Parts) -> Result<Cow<'_, str>, AuthError> {
    let from_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .filter(|v| !v.trim().is_empty());
    if let Some(value) = from_header {
        return match value {
            Cow::Borrowed(value) => parse_credentials(value, false).map(Cow::Borrowed),
            Cow::Owned(value) => parse_credentials(&value, false).map(|t| Cow::Owned(t.into())),
        };
    }
    match token_cookie(&parts.headers) {
        Some(value) if !value.trim().is_empty() => {
            parse_credentials(&value, true).map(|t| Cow::Owned(t.into()))
        }
        _ => Err(failure::missing()),
    }
}

/// Whether the credentials of a request are the `token` cookie's: it has a non-empty `token`
/// cookie and no (non-empty) `Authorization` header, which would win over the cookie.
pub fn credentials_from_cookie(parts: &http::request::Parts) -> bool {
    let has_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| !String::from_utf8_lossy(v.as_bytes()).trim().is_empty());
    !has_header && token_cookie(&parts.headers).is_some_and(|v| !v.trim().is_empty())
}

/// Splits `Bearer <token>` like klue-microservice (`str.split()` on whitespace). A cookie may
/// also hold the bare token.
fn parse_credentials(value: &str, from_cookie: bool) -> Result<&str, AuthError> {
    let mut words = value.split_whitespace();
    let Some(scheme) = words.next() else {
        return Err(failure::missing());
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        if from_cookie && words.next().is_none() {
            return Ok(scheme);
        }
        return Err(failure::not_bearer());
    }
    match (words.next(), words.next()) {
        (None, _) => Err(failure::invalid("Token not found in Authorization header")),
        (Some(token), None) => Ok(token),
        (Some(_), Some(_)) => Err(failure::invalid(
            "Authorization header must be Bearer + \\s + token",
        )),
    }
}

/// The first `token` cookie of the request, decoded as Python's `unquote_plus` does
/// (`%XX` escapes, and `+` as a space).
fn token_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.to_str().ok().into_iter().flat_map(|s| s.split(';')))
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == TOKEN_COOKIE)
        .map(|(_, value)| {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .replace('+', " ");
            percent_decode_str(&value).decode_utf8_lossy().into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().uri("/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match builder.body(()) {
            Ok(request) => request.into_parts().0,
            Err(e) => panic!("bad test request: {e}"),
        }
    }

    fn err(headers: &[(&str, &str)]) -> (String, String) {
        match bearer_token(&parts(headers)) {
            Ok(t) => panic!("accepted {t:?}"),
            Err(e) => (e.code().to_owned(), e.description().to_owned()),
        }
    }

    #[test]
    fn header_forms() {
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Bearer abc")])).ok(),
            Some("abc".into())
        );
        assert_eq!(
            bearer_token(&parts(&[("authorization", "bEaReR  abc ")])).ok(),
            Some("abc".into())
        );
        assert_eq!(err(&[]).0, "AUTHORIZATION_HEADER_MISSING");
        assert_eq!(
            err(&[("authorization", "")]).0,
            "AUTHORIZATION_HEADER_MISSING"
        );
        assert_eq!(
            err(&[("authorization", "Basic x")]).1,
            "Authorization header must start with Bearer"
        );
        assert_eq!(
            err(&[("authorization", "Bearer1234")]).1,
            "Authorization header must start with Bearer"
        );
        assert_eq!(
            err(&[("authorization", "Bearer")]).1,
            "Token not found in Authorization header"
        );
        assert_eq!(
            err(&[("authorization", "bearer a b")]).1,
            "Authorization header must be Bearer + \\s + token"
        );
    }

    #[test]
    fn cookie_forms() {
        let ok = |c: &str| bearer_token(&parts(&[("cookie", c)])).ok();
        assert_eq!(ok("token=Bearer%20abc"), Some("abc".into()));
        assert_eq!(ok("a=1; token=Bearer+abc; b=2"), Some("abc".into()));
        assert_eq!(ok("token=abc"), Some("abc".into()));
        assert_eq!(ok("token=\"Bearer%20abc\""), Some("abc".into()));
        assert_eq!(
            err(&[("cookie", "token=")]).0,
            "AUTHORIZATION_HEADER_MISSING"
        );
        assert_eq!(
            err(&[("cookie", "other=1")]).0,
            "AUTHORIZATION_HEADER_MISSING"
        );
        assert_eq!(
            err(&[("cookie", "token=Basic%20x")]).1,
            "Authorization header must start with Bearer"
        );
        // The header wins over the cookie.
        let both = parts(&[("authorization", "Bearer h"), ("cookie", "token=c")]);
        assert_eq!(bearer_token(&both).ok(), Some("h".into()));
    }
}
