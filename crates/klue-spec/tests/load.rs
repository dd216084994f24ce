//! Loader tests over folders of good specs.

use klue_spec::*;
use std::path::Path;

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn load(rel: &str) -> Vec<Api> {
    match load_dir(&fixture(rel)) {
        Ok(apis) => apis,
        Err(e) => panic!("{rel}: {e}"),
    }
}

#[test]
fn repo_helloworld_loads() {
    let apis = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apis"))
        .unwrap_or_else(|e| panic!("{e}"));
    let api = &apis[0];
    println!("{}", serde_json::to_string_pretty(api).unwrap());
}
