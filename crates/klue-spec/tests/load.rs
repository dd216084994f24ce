//! Loader tests over folders of good specs (paths relative to the crate, so snapshots do not
//! depend on the machine).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_spec::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn load(rel: &str) -> Vec<Api> {
    match load_dir(Path::new(rel)) {
        Ok(apis) => apis,
        Err(e) => panic!("{rel}: {e}"),
    }
}

/// The API with the fields that legitimately differ between spec versions cleared.
fn comparable(api: &Api) -> Value {
    let ops: Vec<Value> = api
        .operations
        .iter()
        .map(|o| {
            json!({
                "operation_id": o.operation_id,
                "handler": o.handler,
                "client_name": o.client_name,
                "method": o.method,
                "path": o.path,
                "summary": o.summary,
                "parameters": o.parameters,
                "request_body": o.request_body,
                "responses": o.responses,
                "auth": o.auth,
                "deprecated": o.deprecated,
                "builtin": o.builtin,
            })
        })
        .collect();
    json!({
        "name": api.name,
        "title": api.title,
        "version": api.version,
        "description": api.description,
        "base_path": api.base_path,
        "operations": ops,
        "schemas": api.schemas,
    })
}

#[test]
fn repo_helloworld_loads() {
    let apis = load("../../apis");
    assert_eq!(apis.len(), 1);
    let api = &apis[0];
    assert_eq!(api.name, "helloworld");
    assert_eq!(api.spec_version, SpecVersion::OpenApi31);
    assert_eq!(api.base_path, "");
    let ids: Vec<&str> = api
        .operations
        .iter()
        .map(|o| o.operation_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "hello",
            "create_item",
            "list_items",
            "get_item",
            "ping",
            "version",
            "auth_version"
        ]
    );
    let create = api.operation("create_item").unwrap();
    assert_eq!(create.path, "/v1/items");
    assert_eq!(
        create.auth,
        AuthRequirement::Jwt {
            schemes: vec!["jwt".into()]
        }
    );
    assert_eq!(
        create.request_body.as_ref().unwrap().json_schema(),
        Some(&json!({"$ref": "#/$defs/NewItem"}))
    );
    assert_eq!(
        create.success_response().unwrap().status,
        ResponseStatus::Code(201)
    );
    let statuses: Vec<String> = create
        .responses
        .iter()
        .map(|r| r.status.to_string())
        .collect();
    assert_eq!(statuses, ["201", "400", "401", "413", "415"]);
    let hello = api.operation("hello").unwrap();
    assert_eq!(
        hello.parameters[0].schema,
        json!({"type": "string", "minLength": 1, "maxLength": 32})
    );
    assert_eq!(hello.location.line, Some(83));
    assert!(api.operation("ping").unwrap().builtin);
    assert_eq!(
        api.operation("auth_version").unwrap().auth,
        AuthRequirement::Jwt {
            schemes: vec!["jwt".into()]
        }
    );
    for name in [
        "Error",
        "FieldError",
        "Empty",
        "Version",
        "Greeting",
        "Item",
        "ItemList",
        "NewItem",
    ] {
        assert!(api.schemas.contains_key(name), "{name}");
    }
    assert_eq!(api.document["openapi"], "3.1.0");
    assert_eq!(
        api.document["paths"]["/v1/items"]["post"]["responses"]["201"]["content"]["application/json"]
            ["schema"],
        json!({"$ref": "#/components/schemas/Item"})
    );
}

#[test]
fn helloworld_is_the_same_in_every_version() {
    let v31 = load("tests/fixtures/helloworld/openapi31");
    let v30 = load("tests/fixtures/helloworld/openapi30");
    let v2 = load("tests/fixtures/helloworld/swagger2");
    assert_eq!(v31[0].spec_version, SpecVersion::OpenApi31);
    assert_eq!(v30[0].spec_version, SpecVersion::OpenApi30);
    assert_eq!(v2[0].spec_version, SpecVersion::Swagger2);
    let reference = comparable(&v31[0]);
    assert_eq!(comparable(&v30[0]), reference);
    assert_eq!(comparable(&v2[0]), reference);
    // 2.0's apiKey on Authorization is a bearer scheme.
    assert_eq!(
        v2[0].security_schemes["jwt"],
        SecurityScheme::Bearer {
            bearer_format: None
        }
    );
}

/// The helloworld API as the Python original serves it (klue-microservice 0.0.128, with its
/// `x-bind-server` handlers and `x-decorate-server` auth), vendored in the fixtures.
#[test]
fn klue_microservice_helloworld_loads() {
    let dir = Path::new("tests/fixtures/klue-microservice");
    let apis = load_dir(dir).unwrap_or_else(|e| panic!("{e}"));
    let api = &apis[0];
    assert_eq!(api.spec_version, SpecVersion::Swagger2);
    assert_eq!(api.base_path, "");
    let hello = api.operation("do_hello").unwrap();
    assert_eq!(hello.handler, "helloworld.api.do_hello");
    assert_eq!(hello.path, "/v1/hello/{name}");
    let create = api.operation("do_create_item").unwrap();
    assert_eq!(
        create.auth,
        AuthRequirement::Jwt {
            schemes: vec!["x-decorate-server".into()]
        }
    );
    assert_eq!(
        api.document["paths"]["/v1/items"]["post"]["security"],
        json!([{"jwt": []}])
    );
}

fn snapshot_value(apis: &[Api]) -> Value {
    json!(apis.iter().map(|a| json!({
        "api": comparable(a),
        "spec_version": a.spec_version,
        "security_schemes": a.security_schemes,
        "locations": a.operations.iter().map(|o| o.location.to_string()).collect::<Vec<_>>(),
    })).collect::<Vec<_>>())
}

#[test]
fn corpus_loads_in_every_version() {
    for version in ["openapi31", "openapi30", "swagger2"] {
        let dir = format!("tests/fixtures/corpus/{version}");
        let apis = load(&dir);
        assert_eq!(
            apis.len(),
            1,
            "{version}: common.yaml is a fragment, not an API"
        );
        let api = &apis[0];
        assert_eq!(api.name, "petstore");
        assert_eq!(api.base_path, "/api/v2");
        assert_eq!(api.source, PathBuf::from(format!("{dir}/petstore.yaml")));
        // The fragment's Error collides with the built-in Error: it is prefixed.
        assert!(api.schemas.contains_key("common_Error"), "{version}");
        assert!(api.schemas.contains_key("Money"), "{version}");
        assert!(api.schemas.contains_key("ErrorDetail"), "{version}");
        insta::assert_json_snapshot!(format!("corpus_{version}"), snapshot_value(&apis));
        insta::assert_json_snapshot!(format!("corpus_{version}_document"), api.document);
    }
}

#[test]
fn corpus_30_normalizes_to_31() {
    let v31 = load("tests/fixtures/corpus/openapi31");
    let v30 = load("tests/fixtures/corpus/openapi30");
    assert_eq!(v30[0].schemas, v31[0].schemas);
    assert_eq!(comparable(&v30[0]), comparable(&v31[0]));
}

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: PathBuf::from(path),
            text: text.to_string(),
        })
        .collect()
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_in_the_ir_and_the_document() {
    for dir in [
        "tests/fixtures/corpus/openapi31",
        "tests/fixtures/corpus/openapi30",
        "tests/fixtures/corpus/swagger2",
        "tests/fixtures/helloworld/swagger2",
    ] {
        for api in load(dir) {
            let mut refs = Vec::new();
            collect_refs(&serde_json::to_value(&api.operations).unwrap(), &mut refs);
            collect_refs(&serde_json::to_value(&api.schemas).unwrap(), &mut refs);
            assert!(!refs.is_empty());
            for r in refs {
                let name = ref_name(&r).unwrap_or_else(|| panic!("{dir}: {r}"));
                assert!(api.schemas.contains_key(name), "{dir}: {r}");
            }
            let mut refs = Vec::new();
            collect_refs(&api.document, &mut refs);
            for r in refs {
                assert!(
                    api.document.pointer(&r[1..]).is_some(),
                    "{dir}: document {r}"
                );
            }
            assert_eq!(api.document["openapi"], "3.1.0");
        }
    }
}

const MINI_HEAD: &str = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n";

#[test]
fn base_path_from_servers() {
    for (servers, expected) in [
        (
            "servers: [{url: 'https://x.example.com/api/v1/'}]",
            "/api/v1",
        ),
        ("servers: [{url: 'https://x.example.com'}]", ""),
        ("servers: [{url: /}]", ""),
        ("servers: [{url: 'v2'}]", "/v2"),
        (
            "servers: [{url: 'https://{h}/{base}', variables: {h: {default: a}, base: {default: root}}}]",
            "/root",
        ),
    ] {
        let text = format!(
            "{MINI_HEAD}{servers}\npaths:\n  /a:\n    get:\n      responses: {{'200': {{description: ok}}}}\n"
        );
        let apis = load_sources(&sources(&[("x.yaml", &text)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(apis[0].base_path, expected, "{servers}");
        assert_eq!(apis[0].operations[0].path, format!("{expected}/a"));
    }
}

#[test]
fn refs_across_files_nested_and_whole_file() {
    let api = format!(
        "{MINI_HEAD}paths:\n  /a:\n    get:\n      operationId: a\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                type: object\n                properties:\n                  t: {{$ref: 'sub/types.yaml#/components/schemas/Thing/properties/tags'}}\n                  w: {{$ref: './widget.yaml'}}\n                  x: {{$ref: 'sub/types.yaml#/components/schemas/Thing'}}\n"
    );
    let types = "components:\n  schemas:\n    Thing:\n      type: object\n      properties:\n        tags: {type: array, items: {type: string}}\n        next: {$ref: '#/components/schemas/Thing'}\n        widget: {$ref: '../widget.yaml'}\n";
    let widget = "type: object\nproperties:\n  size: {type: integer}\n";
    let apis = load_sources(&sources(&[
        ("specs/api.yaml", &api),
        ("specs/sub/types.yaml", types),
        ("specs/widget.yaml", widget),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let api = &apis[0];
    let schema = api.operations[0].responses[0].json_schema().unwrap();
    assert_eq!(
        schema["properties"]["t"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(schema["properties"]["w"], json!({"$ref": "#/$defs/widget"}));
    assert_eq!(schema["properties"]["x"], json!({"$ref": "#/$defs/Thing"}));
    assert_eq!(
        api.schemas["Thing"]["properties"]["next"],
        json!({"$ref": "#/$defs/Thing"})
    );
    assert_eq!(
        api.schemas["Thing"]["properties"]["widget"],
        json!({"$ref": "#/$defs/widget"})
    );
}

#[test]
fn json_specs_load_too() {
    let text = r#"{"swagger": "2.0", "info": {"title": "j", "version": "1"}, "basePath": "/v1",
      "paths": {"/x/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "required": true, "type": "integer"}],
      "responses": {"200": {"description": "ok"}}}}}}"#;
    let apis = load_sources(&sources(&[("j.json", text)])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(apis[0].operations[0].path, "/v1/x/{id}");
    assert_eq!(apis[0].operations[0].operation_id, "get_v1_x_id");
}

#[test]
fn recursive_inline_ref_is_reported() {
    let text = format!(
        "{MINI_HEAD}components:\n  schemas:\n    A:\n      type: object\n      properties:\n        inner:\n          type: object\n          properties:\n            again: {{$ref: '#/components/schemas/A/properties/inner'}}\npaths: {{}}\n"
    );
    let err = load_sources(&sources(&[("r.yaml", &text)])).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].message.contains("recursive"), "{err}");
}
