//! JWT authentication over HTTP against the real service binary: the 401 matrix (code,
//! wording, `WWW-Authenticate`), auth before validation, tokens kept out of the logs, JWKS
//! configuration, and refusing to start without keys. Tokens come from PyJWT
//! (`KLUE_TEST_PYTHON`, set by `cargo xtask test`) and from klue's own `mint_token`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUDIENCE, SECRET, Server, client};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const VERSION_BODY: &str = r#"{"name":"helloworld","version":"0.0.1","container":""}"#;

fn python() -> PathBuf {
    match std::env::var_os("KLUE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "KLUE_TEST_PYTHON is not set: these tests need PyJWT to mint independent tokens. \
             Run them with `cargo xtask test` (it creates the venv and sets KLUE_TEST_PYTHON), \
             or set KLUE_TEST_PYTHON to a python with PyJWT[crypto]==2.10.1 installed."
        ),
    }
}

struct Material {
    tokens: HashMap<String, String>,
    jwks: Map<String, Value>,
}

impl Material {
    fn token(&self, name: &str) -> &str {
        self.tokens
            .get(name)
            .unwrap_or_else(|| panic!("no token {name}"))
    }
}

/// PyJWT tokens (see crates/klue/tests/fixtures/jwt/pyjwt_mint.py): valid claims for the test
/// audience, patched per token.
fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(|| {
        let s = format!("secret:{SECRET}");
        let t = |name: &str, key: &str, alg: &str, headers: Value, claims: Value, rel: Value| {
            let mut all = json!({ "sub": "alice", "aud": AUDIENCE, "role": "admin" });
            let mut rel_all = json!({ "exp": 3600, "iat": 0 });
            for (k, v) in claims.as_object().unwrap() {
                rel_all.as_object_mut().unwrap().remove(k);
                if v.is_null() {
                    all.as_object_mut().unwrap().remove(k);
                } else {
                    all[k] = v.clone();
                }
            }
            for (k, v) in rel.as_object().unwrap() {
                rel_all[k] = v.clone();
            }
            json!({ "name": name, "key": key, "alg": alg, "headers": headers, "claims": all, "rel": rel_all })
        };
        let n = || json!({});
        let tokens = vec![
            t("hs", &s, "HS256", n(), n(), n()),
            t("mallory", &s, "HS256", n(), json!({ "sub": "mallory" }), n()),
            t("exp_in_leeway", &s, "HS256", n(), n(), json!({ "exp": -30 })),
            t("exp_beyond", &s, "HS256", n(), n(), json!({ "exp": -90 })),
            t("nbf_future", &s, "HS256", n(), n(), json!({ "nbf": 400 })),
            t("iat_future", &s, "HS256", n(), n(), json!({ "iat": 400 })),
            t("wrong_aud", &s, "HS256", n(), json!({ "aud": "someone-else" }), n()),
            t("no_aud", &s, "HS256", n(), json!({ "aud": null }), n()),
            t("no_exp", &s, "HS256", n(), json!({ "exp": null }), n()),
            t("wrong_secret", "secret:another-secret-0123456789abcdef", "HS256", n(), n(), n()),
            t("alg_none", "none", "none", n(), n(), n()),
            t("klue_format", &s, "HS256", json!({ "typ": "JWT", "alg": "HS256", "iss": "klue.example" }),
                json!({ "iss": "klue.example", "sub": "bob" }), json!({ "exp": 86400 })),
            t("rs1", "rsa1", "RS256", json!({ "kid": "rsa1" }), n(), n()),
            t("es1", "ec1", "ES256", json!({ "kid": "ec1" }), n(), n()),
            t("rs_unknown_kid", "rsa2", "RS256", json!({ "kid": "rsa2" }), n(), n()),
            t("hmac_pem", "hmac-pem:rsa1", "HS256", json!({ "kid": "rsa1" }), n(), n()),
        ];
        let script = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("../crates/klue/tests/fixtures/jwt/pyjwt_mint.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run KLUE_TEST_PYTHON");
        let request = serde_json::to_vec(&json!({ "tokens": tokens })).unwrap();
        child.stdin.take().unwrap().write_all(&request).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "pyjwt_mint.py: {}", String::from_utf8_lossy(&out.stderr));
        let mut doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        Material {
            tokens: serde_json::from_value(doc["tokens"].take()).unwrap(),
            jwks: serde_json::from_value(doc["jwks"].take()).unwrap(),
        }
    })
}

/// A request with optional `Authorization` and `Cookie` headers.
fn get(
    s: &Server,
    path: &str,
    authorization: Option<&str>,
    cookie: Option<&str>,
) -> reqwest::blocking::Response {
    let mut request = client().get(s.url(path));
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    request.send().unwrap()
}

fn version_with(s: &Server, authorization: &str) -> reqwest::blocking::Response {
    get(s, "/auth/version", Some(authorization), None)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a 401 with klue's error body and a Bearer challenge.
fn assert_401(response: reqwest::blocking::Response, code: &str, description: &str) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["status"], 401, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert!(
        body["error_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    let challenge = challenge.expect("WWW-Authenticate on a 401");
    match code {
        "AUTHORIZATION_HEADER_MISSING" => assert_eq!(challenge, "Bearer"),
        _ if description == "Authorization header must start with Bearer" => {
            assert_eq!(challenge, "Bearer")
        }
        _ => assert_eq!(challenge, "Bearer error=\"invalid_token\""),
    }
}

fn assert_version(response: reqwest::blocking::Response) {
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body, serde_json::from_str::<Value>(VERSION_BODY).unwrap());
}

const MISSING: &str = "AUTHORIZATION_HEADER_MISSING";
const INVALID: &str = "TOKEN_INVALID";

#[test]
fn the_401_matrix_over_http() {
    let m = material();
    let s = Server::start();

    // Where the token comes from.
    assert_401(
        get(&s, "/auth/version", None, None),
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    assert_401(
        version_with(&s, "Basic x"),
        INVALID,
        "Authorization header must start with Bearer",
    );
    assert_401(
        version_with(&s, "Bearer1234567890"),
        INVALID,
        "Authorization header must start with Bearer",
    );
    assert_401(
        version_with(&s, "Bearer"),
        INVALID,
        "Token not found in Authorization header",
    );
    assert_401(
        version_with(&s, "Bearer a b"),
        INVALID,
        "Authorization header must be Bearer + \\s + token",
    );
    assert_401(
        version_with(&s, "bearer foo bar"),
        INVALID,
        "Authorization header must be Bearer + \\s + token",
    );
    assert_401(
        version_with(&s, "Bearer not-a-jwt"),
        INVALID,
        "token signature is invalid",
    );

    // Tokens.
    assert_version(version_with(&s, &bearer(m.token("hs"))));
    assert_version(version_with(&s, &format!("bEaReR {}", m.token("hs"))));
    assert_version(version_with(&s, &bearer(m.token("klue_format"))));
    assert_version(version_with(&s, &bearer(m.token("exp_in_leeway"))));
    assert_401(
        version_with(&s, &bearer(m.token("exp_beyond"))),
        "TOKEN_EXPIRED",
        "Auth token is expired",
    );
    assert_401(
        version_with(&s, &bearer(m.token("nbf_future"))),
        INVALID,
        "token is not yet valid (nbf)",
    );
    assert_401(
        version_with(&s, &bearer(m.token("iat_future"))),
        INVALID,
        "Token was issued in the future",
    );
    assert_401(
        version_with(&s, &bearer(m.token("wrong_aud"))),
        INVALID,
        "incorrect audience",
    );
    assert_401(
        version_with(&s, &bearer(m.token("no_aud"))),
        INVALID,
        "token has no valid 'aud' claim",
    );
    assert_401(
        version_with(&s, &bearer(m.token("no_exp"))),
        INVALID,
        "token has no valid 'exp' claim",
    );
    assert_401(
        version_with(&s, &bearer(m.token("wrong_secret"))),
        INVALID,
        "token signature is invalid",
    );
    assert_401(
        version_with(&s, &bearer(m.token("alg_none"))),
        INVALID,
        "token algorithm is not accepted",
    );
    assert_401(
        version_with(&s, &bearer(m.token("rs1"))),
        INVALID,
        "token algorithm is not accepted",
    );
    // Tampered: alice's header and signature around mallory's payload.
    let alice: Vec<&str> = m.token("hs").split('.').collect();
    let mallory: Vec<&str> = m.token("mallory").split('.').collect();
    let spliced = format!("{}.{}.{}", alice[0], mallory[1], alice[2]);
    assert_401(
        version_with(&s, &bearer(&spliced)),
        INVALID,
        "token signature is invalid",
    );

    // Cookies: `Bearer <jwt>` URL-encoded, or the bare JWT; the header wins.
    let t = m.token("hs");
    assert_version(get(
        &s,
        "/auth/version",
        None,
        Some(&format!("token=Bearer%20{t}")),
    ));
    assert_version(get(
        &s,
        "/auth/version",
        None,
        Some(&format!("a=1; token={t}")),
    ));
    assert_401(
        get(&s, "/auth/version", None, Some("a=1")),
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    assert_401(
        get(
            &s,
            "/auth/version",
            Some(&bearer(m.token("wrong_secret"))),
            Some(&format!("token={t}")),
        ),
        INVALID,
        "token signature is invalid",
    );

    // Operations without auth do not look at tokens.
    assert_eq!(
        get(&s, "/version", Some("Basic x"), None).status().as_u16(),
        200
    );
}

#[test]
fn auth_runs_before_validation_and_valid_tokens_work() {
    let m = material();
    let s = Server::start();
    let post = |authorization: Option<&str>, body: &str| {
        let mut request = client()
            .post(s.url("/v1/items"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        request.send().unwrap()
    };
    // Invalid bodies without (or with a bad) token: 401, never a hint about the body.
    assert_401(
        post(None, r#"{"name": "x", "count": -1}"#),
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    assert_401(
        post(None, "{not json"),
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    assert_401(
        post(Some(&bearer(m.token("exp_beyond"))), "{}"),
        "TOKEN_EXPIRED",
        "Auth token is expired",
    );
    // With a token: validation, then success.
    let token = bearer(m.token("hs"));
    assert_eq!(
        post(Some(&token), r#"{"name": "x", "count": -1}"#)
            .status()
            .as_u16(),
        400
    );
    let created = post(Some(&token), r#"{"name":"x","count":1}"#);
    assert_eq!(created.status().as_u16(), 201);
    let item: Value = created.json().unwrap();
    assert_eq!(item["name"], "x");
    assert_eq!(item["count"], 1);

    // A token from klue's own minting (what `cargo xtask token` prints).
    let minted = klue::auth::mint_token(
        SECRET.as_bytes(),
        AUDIENCE,
        Some("klue.example"),
        "carol",
        Duration::from_secs(600),
        Map::new(),
    )
    .unwrap();
    assert_version(version_with(&s, &bearer(&minted)));
    assert_eq!(
        post(Some(&bearer(&minted)), r#"{"name":"y","count":0}"#)
            .status()
            .as_u16(),
        201
    );
}

#[test]
fn tokens_never_reach_the_logs() {
    let m = material();
    let s = Server::start_with_env(&[
        ("RUST_LOG", Some("debug")),
        ("KLUE_LOG_FORMAT", Some("json")),
    ]);
    let names = ["hs", "exp_beyond", "wrong_secret", "alg_none", "wrong_aud"];
    for name in names {
        let t = m.token(name);
        version_with(&s, &bearer(t));
        get(
            &s,
            "/auth/version",
            None,
            Some(&format!("token=Bearer%20{t}")),
        );
        client()
            .post(s.url("/v1/items"))
            .header("authorization", bearer(t))
            .body(r#"{"name":"z","count":-5}"#)
            .send()
            .unwrap();
    }
    version_with(&s, "Bearer not-a-jwt-but-secret-looking");
    // Give the log lines time to be written.
    std::thread::sleep(Duration::from_millis(300));
    let output = s.output();
    assert!(
        !output.is_empty(),
        "the server logged nothing at debug level"
    );
    for name in names {
        let t = m.token(name);
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !output.contains(t),
            "token {name} found in the logs:\n{output}"
        );
        if !signature.is_empty() {
            assert!(
                !output.contains(signature),
                "signature of {name} found in the logs:\n{output}"
            );
        }
    }
    assert!(!output.contains("not-a-jwt-but-secret-looking"), "{output}");
    assert!(
        !output.contains(SECRET),
        "the secret is in the logs:\n{output}"
    );
}

#[test]
fn jwks_configuration_accepts_rs256_and_es256_only() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let keys: Vec<Value> = ["rsa1", "ec1"].iter().map(|k| m.jwks[*k].clone()).collect();
    std::fs::write(&path, serde_json::to_vec(&json!({ "keys": keys })).unwrap()).unwrap();
    let s = Server::start_with_env(&[
        ("KLUE_JWT_SECRET", None),
        ("KLUE_JWT_JWKS", Some(path.to_str().unwrap())),
    ]);
    assert_version(version_with(&s, &bearer(m.token("rs1"))));
    assert_version(version_with(&s, &bearer(m.token("es1"))));
    // An HS256 token sent to an RS256 configuration, and one MACed with the RSA public key.
    assert_401(
        version_with(&s, &bearer(m.token("hs"))),
        INVALID,
        "token algorithm is not accepted",
    );
    assert_401(
        version_with(&s, &bearer(m.token("hmac_pem"))),
        INVALID,
        "token algorithm is not accepted",
    );
    assert_401(
        version_with(&s, &bearer(m.token("alg_none"))),
        INVALID,
        "token algorithm is not accepted",
    );
    assert_401(
        version_with(&s, &bearer(m.token("rs_unknown_kid"))),
        INVALID,
        "token key id (kid) is unknown",
    );
}

/// Runs the service binary with `env` (and no JWT variables otherwise) and expects it to exit
/// on its own; returns (success, stderr + stdout).
fn start_expecting_exit(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_service"));
    cmd.args([
        "--port",
        &common::free_port().to_string(),
        "--host",
        "127.0.0.1",
    ])
    .env_remove("KLUE_JWT_SECRET")
    .env_remove("KLUE_JWT_AUDIENCE")
    .env_remove("KLUE_JWT_ISSUER")
    .env_remove("KLUE_JWT_JWKS")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the service kept running; output:\n{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.success(), text)
}

#[test]
fn refuses_to_start_without_keys_naming_the_operations() {
    let (ok, output) = start_expecting_exit(&[]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("create_item"),
        "does not name create_item:\n{output}"
    );
    assert!(output.contains("POST /v1/items"), "{output}");
    // Built-ins (`/auth/version`) answer 401 without keys and do not block startup.
    assert!(
        output.contains("KLUE_JWT_SECRET"),
        "does not say what to set:\n{output}"
    );
}

#[test]
fn refuses_to_start_with_an_empty_secret() {
    let (ok, output) =
        start_expecting_exit(&[("KLUE_JWT_SECRET", ""), ("KLUE_JWT_AUDIENCE", AUDIENCE)]);
    assert!(!ok, "{output}");
    assert!(output.contains("KLUE_JWT_SECRET"), "{output}");
    let (ok, output) = start_expecting_exit(&[("KLUE_JWT_SECRET", SECRET)]);
    assert!(!ok, "{output}");
    assert!(output.contains("KLUE_JWT_AUDIENCE"), "{output}");
    assert!(!output.contains(SECRET), "the secret is printed:\n{output}");
}

#[test]
fn refuses_to_start_with_an_unknown_log_format() {
    let (ok, output) = start_expecting_exit(&[
        ("KLUE_JWT_SECRET", SECRET),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
        ("KLUE_LOG_FORMAT", "xml"),
    ]);
    assert!(!ok, "{output}");
    assert!(output.contains("KLUE_LOG_FORMAT=\"xml\""), "{output}");
    assert!(output.contains("`json`"), "{output}");
}
