//! Snapshot tests of the generated code: the corpus of specs (OpenAPI 3.1, 3.0 and Swagger 2.0
//! variants of one large API with allOf, oneOf, enums, nullable, recursion, maps and formats)
//! and the example service's helloworld API. Review changes with `cargo insta review`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../..")
}

fn render(dir: &Path) -> String {
    klue_codegen::Config::new(dir)
        .serve_all()
        .embed_specs(false)
        .render()
        .unwrap_or_else(|e| panic!("codegen of {} failed:\n{e}", dir.display()))
}

fn corpus(version: &str) -> String {
    render(
        &workspace()
            .join("crates/klue-spec/tests/fixtures/corpus")
            .join(version),
    )
}

#[test]
fn corpus_openapi31() {
    insta::assert_snapshot!(corpus("openapi31"));
}

#[test]
fn corpus_openapi30() {
    insta::assert_snapshot!(corpus("openapi30"));
}

#[test]
fn corpus_swagger2() {
    insta::assert_snapshot!(corpus("swagger2"));
}

#[test]
fn helloworld() {
    insta::assert_snapshot!(render(&workspace().join("apis")));
}

/// Shapes beyond the corpus: untagged unions, the JSON fallback, nullable forms, keywords,
/// inline types, header/cookie/array parameters, several 2xx, ranges and `default`.
#[test]
fn edge_cases() {
    insta::assert_snapshot!(render(
        &std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("tests/fixtures/edge")
    ));
}

#[test]
fn output_is_deterministic() {
    let dir = workspace().join("crates/klue-spec/tests/fixtures/corpus/openapi31");
    assert_eq!(render(&dir), render(&dir));
}

#[test]
fn unknown_served_api_is_an_error() {
    let err = klue_codegen::Config::new(workspace().join("apis"))
        .serve("nope")
        .render()
        .unwrap_err();
    assert!(err.to_string().contains("no API `nope`"), "{err}");
}
