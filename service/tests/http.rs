//! HTTP tests of the example service: every helloworld operation and validation rule, run
//! against the spec built into the binary (OpenAPI 3.1) and against the same API written as
//! OpenAPI 3.0 and Swagger 2.0 (`--apis-dir` fixtures of klue-spec), which must behave alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUDIENCE, SECRET, Server, client};
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{Value, json};
use std::time::Duration;

fn token() -> String {
    klue::auth::mint_token(
        SECRET.as_bytes(),
        AUDIENCE,
        None,
        "http-tests",
        Duration::from_secs(600),
        serde_json::Map::new(),
    )
    .unwrap()
}

fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().unwrap();
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{status} {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn send(request: RequestBuilder) -> (u16, Value) {
    json_of(request.send().unwrap())
}

/// Asserts a klue error answer and returns the names/pointers of its field errors.
fn error_fields(status: u16, body: &Value, want_status: u16, want_code: &str) -> Vec<String> {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body["error_id"].as_str().map(str::len), Some(36), "{body}");
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["name"]
                        .as_str()
                        .or(e["pointer"].as_str())
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn post_item(server: &Server, body: &str) -> (u16, Value) {
    send(
        client()
            .post(server.url("/v1/items"))
            .bearer_auth(token())
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
}

/// Everything a helloworld service must answer, for one running server.
fn check_helloworld(server: &Server) {
    // Built-ins.
    assert_eq!(send(client().get(server.url("/ping"))), (200, json!({})));
    let version = json!({"name": "helloworld", "version": "0.0.1", "container": ""});
    assert_eq!(
        send(client().get(server.url("/version"))),
        (200, version.clone())
    );
    assert_eq!(
        send(
            client()
                .get(server.url("/auth/version"))
                .bearer_auth(token())
        ),
        (200, version)
    );

    // GET /v1/hello/{name}
    assert_eq!(
        send(client().get(server.url("/v1/hello/bob"))),
        (200, json!({"message": "hello bob"}))
    );
    assert_eq!(
        send(client().get(server.url("/v1/hello/J%C3%BCrgen%20K"))).1["message"],
        "hello Jürgen K"
    );
    let name32 = "a".repeat(32);
    assert_eq!(
        send(client().get(server.url(&format!("/v1/hello/{name32}")))).0,
        200
    );
    let (status, body) = send(client().get(server.url(&format!("/v1/hello/{name32}b"))));
    assert_eq!(
        error_fields(status, &body, 400, "INVALID_PARAMETER"),
        ["name"]
    );
    assert_eq!(body["errors"][0]["in"], "path");

    // POST /v1/items
    let (status, created) = post_item(server, r#"{"name": "widget", "count": 3}"#);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "widget");
    assert_eq!(created["count"], 3);
    assert_eq!(created["tags"], json!([]));
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let (status, tagged) = post_item(
        server,
        r#"{"name": "gadget", "count": 0, "tags": ["a", "b"]}"#,
    );
    assert_eq!((status, &tagged["tags"]), (201, &json!(["a", "b"])));

    // JSON Schema counts 3.0 as an integer: accepted, and stored as 3.
    let (status, integral) = post_item(server, r#"{"name": "floaty", "count": 3.0}"#);
    assert_eq!((status, &integral["count"]), (201, &json!(3)), "{integral}");
    let (status, answer) = post_item(server, r#"{"name": "x", "count": 1e30}"#);
    assert_eq!(
        error_fields(status, &answer, 400, "INVALID_PARAMETER"),
        ["/count"],
        "beyond int64"
    );

    let invalid_bodies = [
        (
            r#"{"name": "this name is far too long", "count": 1}"#,
            "/name",
        ),
        (r#"{"name": "", "count": 1}"#, "/name"),
        (r#"{"name": "x", "count": -1}"#, "/count"),
        (r#"{"name": "x", "count": "three"}"#, "/count"),
        (r#"{"name": "x", "count": 1.5}"#, "/count"),
        (r#"{"count": 1}"#, "/name"),
        (r#"{"name": "x"}"#, "/count"),
        (r#"{"name": "x", "count": 1, "tags": ["a", "a"]}"#, "/tags"),
        (
            r#"{"name": "x", "count": 1, "tags": ["1", "2", "3", "4", "5", "6"]}"#,
            "/tags",
        ),
        (r#"{"name": "x", "count": 1, "tags": [1]}"#, "/tags/0"),
        (r#"["not", "an", "object"]"#, ""),
    ];
    for (body, pointer) in invalid_bodies {
        let (status, answer) = post_item(server, body);
        assert_eq!(
            error_fields(status, &answer, 400, "INVALID_PARAMETER"),
            [pointer],
            "{body}"
        );
        assert_eq!(answer["errors"][0]["in"], "body");
    }
    let (status, answer) = post_item(server, r#"{"name": "x", "count": "#);
    error_fields(status, &answer, 400, "INVALID_PARAMETER");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{answer}"
    );

    let (status, answer) = send(
        client()
            .post(server.url("/v1/items"))
            .bearer_auth(token())
            .header("content-type", "text/plain")
            .body(r#"{"name": "x", "count": 1}"#),
    );
    error_fields(status, &answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    let too_large = format!(
        r#"{{"name": "x", "count": 1, "pad": "{}"}}"#,
        "p".repeat(1024 * 1024)
    );
    let (status, answer) = post_item(server, &too_large);
    error_fields(status, &answer, 413, "PAYLOAD_TOO_LARGE");
    // Auth is checked before the body.
    let (status, answer) = send(client().post(server.url("/v1/items")).body("{}"));
    error_fields(status, &answer, 401, "AUTHORIZATION_HEADER_MISSING");

    // GET /v1/items/{id}
    assert_eq!(
        send(client().get(server.url(&format!("/v1/items/{id}")))),
        (200, created.clone())
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, answer) = send(client().get(server.url(&format!("/v1/items/{unknown}"))));
    error_fields(status, &answer, 404, "ITEM_NOT_FOUND");
    let (status, answer) = send(client().get(server.url("/v1/items/not-a-uuid")));
    assert_eq!(
        error_fields(status, &answer, 400, "INVALID_PARAMETER"),
        ["id"]
    );

    // GET /v1/items?limit=&offset=
    let (status, list) = send(client().get(server.url("/v1/items")));
    assert_eq!(status, 200);
    assert_eq!(list["total"], 3);
    assert_eq!(list["items"][0], created, "oldest first");
    let (_, page) = send(client().get(server.url("/v1/items?limit=1&offset=1")));
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "gadget");
    assert_eq!(page["total"], 3);
    let (_, empty_limit) = send(client().get(server.url("/v1/items?limit=")));
    assert_eq!(
        empty_limit["items"].as_array().unwrap().len(),
        3,
        "an empty limit is the default"
    );
    assert_eq!(
        send(client().get(server.url("/v1/items?limit=2.0"))).1["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "limit=1.5",
        "offset=306634319219330514944",
        "limit=5&limit=abc",
        "limit=abc&limit=5",
    ] {
        let (status, answer) = send(client().get(server.url(&format!("/v1/items?{query}"))));
        let name = query.split('=').next().unwrap();
        assert_eq!(
            error_fields(status, &answer, 400, "INVALID_PARAMETER"),
            [name],
            "{query}"
        );
        assert_eq!(answer["errors"][0]["in"], "query");
    }

    // Routing errors as JSON.
    let (status, answer) = send(client().get(server.url("/v1/nope")));
    error_fields(status, &answer, 404, "NOT_FOUND");
    let response = client().delete(server.url("/v1/items")).send().unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let (status, answer) = json_of(response);
    error_fields(status, &answer, 405, "METHOD_NOT_ALLOWED");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[test]
fn helloworld_openapi31_built_in() {
    check_helloworld(&Server::start());
}

fn fixture_dir(version: &str) -> String {
    format!(
        "{}/../crates/klue-spec/tests/fixtures/helloworld/{version}",
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()
    )
}

#[test]
fn helloworld_openapi30_fixture_behaves_the_same() {
    check_helloworld(&Server::start_with_env(&[(
        "KLUE_APIS_DIR",
        Some(&fixture_dir("openapi30")),
    )]));
}

#[test]
fn helloworld_swagger2_fixture_behaves_the_same() {
    check_helloworld(&Server::start_with_env(&[(
        "KLUE_APIS_DIR",
        Some(&fixture_dir("swagger2")),
    )]));
}

#[test]
fn served_spec_and_docs() {
    let server = Server::start();
    let spec: Value = client()
        .get(server.url("/openapi/helloworld.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(spec["info"]["title"], "Helloworld API");
    for path in [
        "/v1/hello/{name}",
        "/v1/items",
        "/v1/items/{id}",
        "/ping",
        "/version",
        "/auth/version",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the served spec"
        );
    }
    assert!(spec["components"]["schemas"]["Error"].is_object());
    let yaml = client()
        .get(server.url("/openapi/helloworld.yaml"))
        .send()
        .unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    assert!(yaml.text().unwrap().contains("operationId: create_item"));
    let docs = client().get(server.url("/docs")).send().unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().unwrap().contains("/openapi/helloworld.json"));
}
