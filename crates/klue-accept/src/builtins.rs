//! Assertions every klue service passes, whatever its API: the built-in endpoints `/ping`,
//! `/version` and `/auth/version`, and JSON 404s. They take the runtime client that every
//! generated client wraps (`<Name>Client::client()`), so any service's suite can reuse them.

use crate::{CheckResult, Failure, expect_error, send, show_body};
use klue::client::{Call, Client, Method, Response};
use serde_json::Value;

fn json_body(response: &Response, assertion: &str) -> Result<Value, Failure> {
    serde_json::from_slice(response.body()).map_err(|e| {
        Failure::new(
            assertion,
            format!("the body is not JSON ({e}): {}", show_body(response.body())),
        )
    })
}

fn expect_status(response: &Response, status: u16, assertion: &str) -> CheckResult {
    if response.status() == status {
        Ok(())
    } else {
        Err(Failure::new(
            assertion,
            format!(
                "got HTTP {} with {}",
                response.status(),
                show_body(response.body())
            ),
        ))
    }
}

/// `GET /ping` answers 200 with the JSON body `{}`.
pub async fn has_ping(client: &Client) -> CheckResult {
    const A: &str = "GET /ping -> 200 {}";
    let response = send(client, Call::new(Method::GET, "/ping"), A).await?;
    expect_status(&response, 200, A)?;
    let body = json_body(&response, A)?;
    if body != Value::Object(Default::default()) {
        return Err(Failure::new(
            A,
            format!("got {}", show_body(response.body())),
        ));
    }
    Ok(())
}

/// The checks of a version body: an object whose `name`, `version` and `container` are strings.
fn expect_version(body: &Value, raw: &[u8], assertion: &str) -> CheckResult {
    for field in ["name", "version", "container"] {
        if !body.get(field).is_some_and(Value::is_string) {
            return Err(Failure::new(
                assertion,
                format!("`{field}` is not a string in {}", show_body(raw)),
            ));
        }
    }
    Ok(())
}

/// `GET /version` answers 200 with `name`, `version` and `container` strings.
pub async fn has_version(client: &Client) -> CheckResult {
    const A: &str = "GET /version -> 200 {name, version, container}";
    let response = send(client, Call::new(Method::GET, "/version"), A).await?;
    expect_status(&response, 200, A)?;
    let body = json_body(&response, A)?;
    expect_version(&body, response.body(), A)
}

/// Malformed `Authorization` headers that must get 401 `TOKEN_INVALID`.
pub const MALFORMED_AUTHORIZATIONS: [&str; 3] =
    ["Bearer1234567890", "bearer foo bar", "Bearer 1234567890"];

/// `GET /auth/version`: without a header 401 `AUTHORIZATION_HEADER_MISSING`; with
/// [`MALFORMED_AUTHORIZATIONS`] 401 `TOKEN_INVALID`; with `token` 200 and the body of
/// `GET /version`.
pub async fn has_auth_version(client: &Client, token: &str) -> CheckResult {
    const MISSING: &str =
        "GET /auth/version without Authorization -> 401 AUTHORIZATION_HEADER_MISSING";
    let response = send(client, Call::new(Method::GET, "/auth/version"), MISSING).await?;
    expect_error(&response, 401, "AUTHORIZATION_HEADER_MISSING", MISSING)?;

    for header in MALFORMED_AUTHORIZATIONS {
        let assertion =
            format!("GET /auth/version with `Authorization: {header}` -> 401 TOKEN_INVALID");
        let call = Call::new(Method::GET, "/auth/version").header("Authorization", header);
        let response = send(client, call, &assertion).await?;
        expect_error(&response, 401, "TOKEN_INVALID", &assertion)?;
    }

    const VALID: &str = "GET /auth/version with a valid token -> 200 {name, version, container}";
    let authed = client.with_token(token);
    let response = send(&authed, Call::new(Method::GET, "/auth/version"), VALID).await?;
    expect_status(&response, 200, VALID)?;
    let body = json_body(&response, VALID)?;
    expect_version(&body, response.body(), VALID)?;

    const SAME: &str = "GET /auth/version answers the body of GET /version";
    let plain = send(client, Call::new(Method::GET, "/version"), SAME).await?;
    expect_status(&plain, 200, SAME)?;
    if json_body(&plain, SAME)? != body {
        return Err(Failure::new(
            SAME,
            format!(
                "/auth/version has {} but /version has {}",
                show_body(response.body()),
                show_body(plain.body())
            ),
        ));
    }
    Ok(())
}

/// An unknown path answers 404 `NOT_FOUND` with klue's JSON error body, not HTML.
pub async fn has_json_404(client: &Client) -> CheckResult {
    const A: &str = "GET an unknown path -> 404 NOT_FOUND (JSON error body)";
    let path = format!("/klue-acceptance/no-such-path/{}", uuid::Uuid::new_v4());
    let response = send(client, Call::new(Method::GET, &path), A).await?;
    expect_error(&response, 404, "NOT_FOUND", A)
}
