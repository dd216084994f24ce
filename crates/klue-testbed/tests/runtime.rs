//! HTTP tests of the klue runtime against the real klue-testbed binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::{Server, client};
use reqwest::blocking::Response;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_klue-testbed");

fn start(env: &[(&str, Option<&str>)]) -> Server {
    Server::start_binary(BIN, env)
}

fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().unwrap();
    assert_eq!(
        content_type, "application/json",
        "status {status}, body {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

/// Asserts the klue error body shape and returns it.
fn assert_error(body: &Value, status: u16, code: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["error_id"].as_str().unwrap().len(), 36, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

fn post_echo(server: &Server, query: &str, body: &str) -> (u16, Value) {
    json_of(
        client()
            .post(server.url(&format!("/echo/7?{query}")))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap(),
    )
}

#[test]
fn builtins_answer() {
    let server = start(&[("KLUE_CONTAINER_VERSION", Some("img-42"))]);
    let (status, body) = json_of(client().get(server.url("/ping")).send().unwrap());
    assert_eq!((status, body), (200, json!({})));
    let (status, body) = json_of(client().get(server.url("/version")).send().unwrap());
    assert_eq!(
        (status, body),
        (
            200,
            json!({"name": "testbed", "version": "1.2.3", "container": "img-42"})
        )
    );
    let (status, body) = json_of(client().get(server.url("/auth/version")).send().unwrap());
    assert_error(&body, 401, "AUTHORIZATION_HEADER_MISSING");
    assert_eq!(status, 401);

    let spec: Value = client()
        .get(server.url("/openapi/testbed.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(
        spec["paths"]["/ping"].is_object(),
        "built-ins merged into the served spec"
    );
    assert!(spec["paths"]["/echo/{id}"]["post"].is_object());
    let yaml = client()
        .get(server.url("/openapi/testbed.yaml"))
        .send()
        .unwrap();
    assert_eq!(yaml.status(), 200);
    assert!(yaml.text().unwrap().contains("/echo/{id}"));

    let docs = client().get(server.url("/docs")).send().unwrap();
    assert_eq!(docs.status(), 200);
    let page = docs.text().unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js") && page.contains("/openapi/testbed.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN: {page}"
    );
    let js = client()
        .get(server.url("/docs/swagger-ui-bundle.js"))
        .send()
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.bytes().unwrap().len() > 100_000);

    for path in [
        "/openapi/nope.json",
        "/openapi/..%2F..%2Fetc%2Fpasswd",
        "/docs/..%2FCargo.toml",
        "/openapi/../Cargo.toml",
    ] {
        let (status, body) = json_of(client().get(server.url(path)).send().unwrap());
        assert_eq!(status, 404, "{path}");
        assert_error(&body, 404, "NOT_FOUND");
    }
}

#[test]
fn not_found_and_method_not_allowed_are_json() {
    let server = start(&[]);
    for path in ["/docs", "/docs/swagger-ui.css", "/openapi/testbed.json"] {
        let (status, body) = json_of(client().post(server.url(path)).send().unwrap());
        assert_eq!(status, 405, "{path}");
        assert_error(&body, 405, "METHOD_NOT_ALLOWED");
    }
    let (status, body) = json_of(client().get(server.url("/no/such/route")).send().unwrap());
    assert_eq!(status, 404);
    assert_error(&body, 404, "NOT_FOUND");

    let response = client().delete(server.url("/echo/1")).send().unwrap();
    let allow = response
        .headers()
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = json_of(response);
    assert_eq!(status, 405);
    assert_error(&body, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(allow, "POST");
}

#[test]
fn parameters_are_coerced_defaulted_and_validated() {
    let server = start(&[]);
    let (status, body) = json_of(
        client()
            .post(server.url("/echo/7?q=a&csv=1,2&multi=3&multi=4&pipes=x|y&spaces=u%20v&filter[min]=2&filter[name]=z"))
            .header("content-type", "application/json")
            .header("x-level", "3")
            .header("cookie", "other=1; session=abc")
            .body(r#"{"name": "thing", "size": 1.5, "child": {"name": "kid"}, "labels": {"a": 1}}"#)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], json!({"id": 7}));
    assert_eq!(
        body["query"],
        json!({"q": "a", "flag": false, "csv": [1, 2], "multi": [3, 4], "pipes": ["x", "y"], "spaces": ["u", "v"], "filter": {"min": 2, "name": "z"}})
    );
    assert_eq!(body["headers"], json!({"X-Level": 3}));
    assert_eq!(body["cookies"], json!({"session": "abc"}));
    assert_eq!(body["body"]["child"]["name"], "kid");
}

#[test]
fn every_invalid_field_is_named() {
    let server = start(&[]);
    // Wrong path type, missing required query, bad enum is absent, too many csv items, bad header, bad cookie.
    let response = client()
        .post(server.url("/echo/abc?csv=1,2,3,4&flag=maybe"))
        .header("content-type", "application/json")
        .header("x-level", "9")
        .header("cookie", "session=ABC")
        .body(r#"{"name": "thing"}"#)
        .send()
        .unwrap();
    let (status, body) = json_of(response);
    assert_eq!(status, 400);
    assert_error(&body, 400, "INVALID_PARAMETER");
    let errors = body["errors"].as_array().unwrap();
    let named: Vec<(String, String)> = errors
        .iter()
        .map(|e| {
            (
                e["in"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("path", "id"),
        ("query", "q"),
        ("query", "csv"),
        ("query", "flag"),
        ("header", "X-Level"),
        ("cookie", "session"),
    ] {
        assert!(
            named.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {named:?}"
        );
    }
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("more error"),
        "{body}"
    );

    let (status, body) = post_echo(&server, "q=c", r#"{"name": "thing"}"#);
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["name"], "q");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is not one of"),
        "{body}"
    );

    let (status, body) = post_echo(&server, "q=a&multi=1&multi=x", r#"{"name": "thing"}"#);
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["pointer"], "/1", "{body}");
}

#[test]
fn bodies_are_validated_with_pointers() {
    let server = start(&[]);
    let cases = [
        (r#"{}"#, "/name", "required"),
        (r#"{"name": ""}"#, "/name", "shorter"),
        (r#"{"name": "x", "size": 0}"#, "/size", "minimum"),
        (r#"{"name": "x", "extra": 1}"#, "", "Additional properties"),
        (
            r#"{"name": "x", "child": {"name": "far too long a name"}}"#,
            "/child/name",
            "longer",
        ),
        (
            r#"{"name": "x", "labels": {"a": "b"}}"#,
            "/labels/a",
            "integer",
        ),
        (
            r#"{"name": "x", "when": "yesterday"}"#,
            "/when",
            "date-time",
        ),
        (r#"{"name": 5}"#, "/name", "string"),
    ];
    for (body, pointer, message) in cases {
        let (status, answer) = post_echo(&server, "q=a", body);
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_error(&answer, 400, "INVALID_PARAMETER");
        let error = &answer["errors"][0];
        assert_eq!(error["in"], "body", "{answer}");
        assert_eq!(error["pointer"], pointer, "{body} -> {answer}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{body} -> {answer}"
        );
    }

    let (status, answer) = post_echo(&server, "q=a", r#"{"name": "x""#);
    assert_eq!(status, 400);
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{answer}"
    );

    let (status, answer) = post_echo(&server, "q=a", "");
    assert_eq!(status, 400);
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("required"),
        "{answer}"
    );

    let response = client()
        .post(server.url("/echo/7?q=a"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .unwrap();
    let (status, answer) = json_of(response);
    assert_eq!(status, 415);
    assert_error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE");

    let response = client()
        .post(server.url("/echo/7?q=a"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=formy&size=2.5")
        .send()
        .unwrap();
    let (status, answer) = json_of(response);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["body"], json!({"name": "formy", "size": 2.5}));
}

#[test]
fn oversized_bodies_get_413_without_being_read_whole() {
    let server = start(&[("KLUE_BODY_LIMIT", Some("1000"))]);
    let big = format!(r#"{{"name": "x", "pad": "{}"}}"#, "a".repeat(5000));
    let (status, answer) = post_echo(&server, "q=a", &big);
    assert_eq!(status, 413);
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
    // Chunked (no Content-Length): the limit applies while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b' '; 500])).collect();
    let response = client()
        .post(server.url("/echo/7?q=a"))
        .header("content-type", "application/json")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            chunks
                .into_iter()
                .flat_map(|c| c.unwrap())
                .collect::<Vec<u8>>(),
        )))
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[test]
fn handler_failures_are_500_without_leaking_the_cause() {
    let server = start(&[("KLUE_VALIDATE_RESPONSES", Some("1"))]);
    let (status, body) = json_of(client().get(server.url("/panic")).send().unwrap());
    assert_eq!(status, 500);
    assert_error(&body, 500, "UNHANDLED_SERVER_ERROR");
    assert!(
        !body.to_string().contains("on purpose"),
        "the panic message must not be sent: {body}"
    );
    let error_id = body["error_id"].as_str().unwrap().to_owned();
    // The process keeps serving.
    let (status, _) = json_of(client().get(server.url("/ping")).send().unwrap());
    assert_eq!(status, 200);

    let (status, body) = json_of(client().get(server.url("/fail")).send().unwrap());
    assert_eq!(status, 500);
    assert_error(&body, 500, "UNHANDLED_SERVER_ERROR");
    assert!(!body.to_string().contains("database"), "{body}");

    let (status, body) = json_of(client().get(server.url("/bad-response")).send().unwrap());
    assert_eq!(status, 500);
    assert_error(&body, 500, "BAD_RESPONSE");
    let (status, body) = json_of(
        client()
            .get(server.url("/undocumented-status"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 500);
    assert_error(&body, 500, "BAD_RESPONSE");

    // The log names the error id with the cause and a backtrace.
    std::thread::sleep(Duration::from_millis(200));
    let log = server.output();
    let line = log
        .lines()
        .find(|l| l.contains(&error_id) && l.contains("on purpose"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("panicked at") || log.contains("backtrace") || log.contains("main.rs"),
        "{line}"
    );
    assert!(log.contains("the database is down"), "{log}");
    assert!(log.contains("is not documented"), "{log}");
}

#[test]
fn handlers_raise_their_own_codes() {
    let server = start(&[]);
    let (status, body) = json_of(client().get(server.url("/custom-error")).send().unwrap());
    assert_eq!(status, 409);
    assert_error(&body, 409, "THING_CONFLICT");
    assert_eq!(body["user_message"], "Pick another name");
}

#[test]
fn request_ids_are_echoed_and_generated() {
    let server = start(&[]);
    let response = client()
        .get(server.url("/nope"))
        .header("x-request-id", "abc-123")
        .send()
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let (_, body) = json_of(response);
    assert_eq!(body["request_id"], "abc-123");
    let response = client().get(server.url("/ping")).send().unwrap();
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap().len(),
        36
    );
    std::thread::sleep(Duration::from_millis(100));
    let log = server.output();
    assert!(
        log.lines()
            .any(|l| l.contains("abc-123") && l.contains("404") && l.contains("/nope")),
        "{log}"
    );
}

#[test]
fn auth_runs_before_validation() {
    let server = start(&[]);
    let (status, body) = json_of(client().get(server.url("/secure")).send().unwrap());
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "AUTHORIZATION_HEADER_MISSING");
}

#[test]
fn gzip_and_cors() {
    let server = start(&[]);
    let response = client()
        .get(server.url("/openapi/testbed.json"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let response = client()
        .request(reqwest::Method::OPTIONS, server.url("/echo/1"))
        .header("origin", "https://example.org")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
}

#[test]
fn slow_handlers_time_out() {
    let server = start(&[("KLUE_REQUEST_TIMEOUT", Some("0.2"))]);
    let (status, body) = json_of(client().get(server.url("/slow?ms=3000")).send().unwrap());
    assert_eq!(status, 503);
    assert_error(&body, 503, "REQUEST_TIMEOUT");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let mut server = start(&[]);
    let url = server.url("/slow?ms=1500");
    let in_flight = std::thread::spawn(move || client().get(url).send().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.pid();
    let mut child = server.take_child();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let response = in_flight.join().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap(), json!({"slept_ms": 1500}));
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    // New connections are refused once it is down.
    assert!(client().get(server.url("/ping")).send().is_err());
}

#[test]
fn startup_refuses_bad_specs_and_missing_auth_config() {
    let dir = std::env::temp_dir().join(format!("klue-testbed-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("testbed.yaml"),
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a/{id}:\n    get:\n      operationId: slow\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Nope'}\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["--port", "0", "--apis-dir"])
        .arg(&dir)
        .env("KLUE_JWT_SECRET", klue_testkit::SECRET)
        .env("KLUE_JWT_AUDIENCE", klue_testkit::AUDIENCE)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("testbed.yaml:"),
        "names the file and line: {stderr}"
    );
    assert!(stderr.contains("Nope"), "{stderr}");
    assert!(stderr.contains("{id}") || stderr.contains("id"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);

    let output = Command::new(BIN)
        .args(["--port", "0"])
        .env_remove("KLUE_JWT_SECRET")
        .env_remove("KLUE_JWT_JWKS")
        .env_remove("KLUE_JWT_AUDIENCE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("secure (GET /secure)"),
        "names the operations needing auth: {stderr}"
    );
}

#[test]
fn json_logs_have_one_line_per_request() {
    let server = start(&[("KLUE_LOG_FORMAT", Some("json"))]);
    let response = client()
        .get(server.url("/ping"))
        .header("x-request-id", "json-log-1")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    std::thread::sleep(Duration::from_millis(200));
    let log = server.output();
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "json-log-1")
        .unwrap_or_else(|| panic!("no JSON log line for the request in:\n{log}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/ping");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(line["level"], "INFO");
}

/// An error answer repeats at most about 100 characters of any value the client sent, however
/// large the value: without the cut, a 1 MiB string came back four to five times over.
#[test]
fn error_answers_do_not_repeat_large_input() {
    let server = start(&[("KLUE_BODY_LIMIT", Some("4000000"))]);
    let huge = "é".repeat(512 * 1024);
    let small = |status: u16, answer: &Value| {
        let size = answer.to_string().len();
        assert!(size < 4096, "{status}: {size} bytes");
        assert!(answer.to_string().contains('…'), "{answer}");
    };

    let body = json!({ "name": huge }).to_string();
    assert!(body.len() > 1024 * 1024);
    let (status, answer) = post_echo(&server, "q=a", &body);
    assert_eq!(status, 400);
    small(status, &answer);
    assert_eq!(answer["errors"][0]["pointer"], "/name", "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.ends_with("…\" is longer than 10 characters"),
        "{message}"
    );
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Invalid body at /name: "),
        "{answer}"
    );

    // A huge unexpected key, and a huge duplicate key.
    let mut object = serde_json::Map::new();
    object.insert("name".into(), json!("x"));
    object.insert(huge.clone(), json!(1));
    let (status, answer) = post_echo(&server, "q=a", &Value::Object(object).to_string());
    assert_eq!(status, 400);
    small(status, &answer);
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Additional properties are not allowed ('éé"),
        "{answer}"
    );
    let duplicated = format!(r#"{{"{huge}": 1, "{huge}": 2}}"#);
    let (status, answer) = post_echo(&server, "q=a", &duplicated);
    assert_eq!(status, 400);
    small(status, &answer);
    assert!(answer.to_string().contains("duplicate key"), "{answer}");

    // A long query parameter (as long as the request head allows) still names the parameter.
    let long = "x".repeat(50_000);
    let (status, answer) = post_echo(&server, &format!("q={long}"), r#"{"name": "x"}"#);
    assert_eq!(status, 400);
    small(status, &answer);
    assert_eq!(answer["errors"][0]["name"], "q", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("…\" is not one of \"a\" or \"b\""),
        "{answer}"
    );

    // The path of a request that matches no route, and an unaccepted Content-Type.
    let (status, answer) = json_of(
        client()
            .get(server.url(&format!("/{long}")))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 404);
    small(status, &answer);
    let response = client()
        .post(server.url("/echo/7?q=a"))
        .header("content-type", format!("text/{long}"))
        .body("x")
        .send()
        .unwrap();
    let (status, answer) = json_of(response);
    assert_eq!(status, 415);
    small(status, &answer);
}

fn token() -> String {
    klue::auth::mint_token(
        klue_testkit::SECRET.as_bytes(),
        klue_testkit::AUDIENCE,
        None,
        "alice",
        Duration::from_secs(600),
        serde_json::Map::new(),
    )
    .unwrap()
}

/// A body sent with the credentials of the `token` cookie is what a page of another site can
/// make a browser send without a CORS preflight: it is read only when it is JSON or comes from
/// the service's own origin.
#[test]
fn cookie_credentials_need_a_json_body_or_the_own_origin() {
    let server = start(&[]);
    let cookie = format!("token=Bearer%20{}", token());
    let own_origin = server.base.clone();
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut request = client().post(server.url("/secure")).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        json_of(request.send().unwrap())
    };
    let thing = r#"{"name": "widget"}"#;
    let refused = [
        // What `fetch(url, {mode: "no-cors", credentials: "include", body})` sends.
        (vec![("cookie", cookie.as_str())], thing, "no Content-Type"),
        (
            vec![("cookie", cookie.as_str()), ("content-type", "text/plain")],
            thing,
            "Content-Type text/plain",
        ),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://evil.example"),
            ],
            "name=widget",
            "Origin (https://evil.example)",
        ),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "name=widget",
            "no Origin",
        ),
    ];
    for (headers, body, why) in refused {
        let (status, answer) = post(&headers, body);
        assert_eq!(status, 403, "{headers:?}: {answer}");
        assert_error(&answer, 403, "CSRF_REJECTED");
        let description = answer["error_description"].as_str().unwrap();
        assert!(
            description.contains("token cookie") && description.contains(why),
            "{description}"
        );
    }

    let accepted = [
        // JSON: a browser sends it across sites only after a preflight, which klue's CORS
        // answer does not pass with credentials.
        vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
            ("origin", "https://evil.example"),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", own_origin.as_str()),
        ],
    ];
    for headers in accepted {
        let form = headers.iter().any(|(_, v)| v.contains("urlencoded"));
        let (status, answer) = post(&headers, if form { "name=widget" } else { thing });
        assert_eq!(status, 200, "{headers:?}: {answer}");
        assert_eq!(answer["subject"], "alice", "{answer}");
        assert_eq!(answer["body"]["name"], "widget", "{answer}");
    }
    // The Authorization header is never sent by a browser on its own: no such rule.
    let bearer = format!("Bearer {}", token());
    let (status, answer) = post(&[("authorization", bearer.as_str())], thing);
    assert_eq!(status, 200, "{answer}");
    // Without a body there is nothing to refuse.
    let (status, answer) = json_of(
        client()
            .get(server.url("/secure?n=1"))
            .header("cookie", cookie.as_str())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
}

/// The Swagger UI page runs only its own scripts (no inline script), cannot be framed, and
/// never calls the online validator; `/docs/` serves it too.
#[test]
fn the_docs_page_is_locked_down() {
    let server = start(&[]);
    for path in ["/docs", "/docs/"] {
        let response = client().get(server.url(path)).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_else(|| panic!("{csp}"));
        assert_eq!(script_src, "script-src 'self'", "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let page = response.text().unwrap();
        // Every script is a file of this service: nothing inline for the policy to block.
        let scripts: Vec<&str> = page.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 2, "{page}");
        for script in scripts {
            assert!(script.trim_start().starts_with("src=\"/docs/"), "{page}");
        }
    }
    let init = client()
        .get(server.url("/docs/init.js"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(init.contains("validatorUrl: null"), "{init}");
}

/// Sends `request` on a fresh connection and returns the status and the JSON body.
fn raw(server: &Server, request: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    // `Connection: close` in every request: the server closes after its answer.
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk: its size line, the data.
        body.split_once("\r\n")
            .unwrap()
            .1
            .rsplit_once("\r\n0\r\n")
            .unwrap()
            .0
    } else {
        body
    };
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a Host, or any request with two, gets a 400.
#[test]
fn requests_need_exactly_one_host() {
    let server = start(&[]);
    for request in [
        "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        "GET /ping HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET /ping HTTP/1.1\r\nHost: user@a\r\nConnection: close\r\n\r\n",
        "GET /no/route HTTP/1.1\r\nConnection: close\r\n\r\n",
        "POST /echo/1?q=a HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "HEAD /ping HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /ping HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let (status, body) = raw(&server, request);
        assert_eq!(status, 400, "{request:?}: {body}");
        if !request.starts_with("HEAD") {
            assert_error(&body, 400, "INVALID_PARAMETER");
            assert_eq!(body["errors"][0]["in"], "header", "{body}");
            assert_eq!(body["errors"][0]["name"], "Host", "{body}");
        }
    }
    for request in [
        "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        // HTTP/1.0 clients may leave it out.
        "GET /ping HTTP/1.0\r\n\r\n",
    ] {
        let (status, body) = raw(&server, request);
        assert_eq!((status, body), (200, json!({})), "{request:?}");
    }
}

/// A token whose `exp` is `ago` in the past (issued ten minutes before that).
fn expired_token(ago: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = now - ago.as_secs();
    klue::auth::mint_token_at(
        klue_testkit::SECRET.as_bytes(),
        klue_testkit::AUDIENCE,
        None,
        "alice",
        Duration::from_secs(600),
        serde_json::Map::new(),
        exp - 600,
    )
    .unwrap()
}

/// `KLUE_JWT_LEEWAY` sets the clock skew allowed on `exp` (60 s by default).
#[test]
fn the_jwt_leeway_is_configurable() {
    let secure = |server: &Server, token: &str| {
        json_of(
            client()
                .get(server.url("/secure?n=1"))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .unwrap(),
        )
    };
    let seconds_ago = expired_token(Duration::from_secs(10));
    let minutes_ago = expired_token(Duration::from_secs(180));

    let default = start(&[]);
    assert_eq!(secure(&default, &seconds_ago).0, 200);
    let (status, body) = secure(&default, &minutes_ago);
    assert_eq!(status, 401, "{body}");
    assert_error(&body, 401, "TOKEN_EXPIRED");

    let strict = start(&[("KLUE_JWT_LEEWAY", Some("0"))]);
    let (status, body) = secure(&strict, &seconds_ago);
    assert_eq!(status, 401, "{body}");
    assert_error(&body, 401, "TOKEN_EXPIRED");

    let lenient = start(&[("KLUE_JWT_LEEWAY", Some("300"))]);
    assert_eq!(secure(&lenient, &minutes_ago).0, 200);

    for bad in ["soon", "-1", "3601"] {
        let output = Command::new(BIN)
            .args(["--port", "0"])
            .env("KLUE_JWT_SECRET", klue_testkit::SECRET)
            .env("KLUE_JWT_AUDIENCE", klue_testkit::AUDIENCE)
            .env("KLUE_JWT_LEEWAY", bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!("KLUE_JWT_LEEWAY=\"{bad}\" is invalid")),
            "{stderr}"
        );
    }
}

/// A debug build starts with a short HS256 secret but says it is too short (a release build
/// refuses it; see `auth::config`).
#[test]
fn a_short_jwt_secret_is_warned_about() {
    let server = start(&[("KLUE_JWT_SECRET", Some("short-secret"))]);
    assert_eq!(
        client().get(server.url("/ping")).send().unwrap().status(),
        200
    );
    let log = server.output();
    assert!(
        log.lines().any(|l| l.contains("KLUE_JWT_SECRET")
            && l.contains("12 bytes")
            && l.contains("RFC 7518")),
        "{log}"
    );
    let long = start(&[]);
    assert_eq!(
        client().get(long.url("/ping")).send().unwrap().status(),
        200
    );
    assert!(!long.output().contains("RFC 7518"), "{}", long.output());
}
