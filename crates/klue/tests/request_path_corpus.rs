//! The request-path fuzz target's checks on every input of its corpus and its regressions, on
//! the stable toolchain: each input goes through the router (`Service::router`) and through
//! the server's own path (`Service::serve_request`, what production runs); neither may answer
//! a 5xx or a malformed error, and both must answer alike (status, error code, content type
//! and encoding, body). The fuzz target itself needs cargo-fuzz and a nightly toolchain; this
//! runs its inputs in every test run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/common/request_path.rs"]
mod request_path;

use arbitrary::{Arbitrary, Unstructured};

#[test]
fn router_and_server_path_answer_every_corpus_input_alike() {
    let fuzz = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus/request_path", "regressions/request_path"] {
        let dir = fuzz.join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        files.extend(entries.map(|entry| entry.unwrap().path()));
    }
    files.sort();
    let mut requests = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        // As libfuzzer-sys decodes an input for the target.
        let Ok(input) = request_path::Input::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        let checked = std::panic::catch_unwind(|| request_path::check(&input));
        match checked {
            Ok(made_a_request) => requests += usize::from(made_a_request),
            Err(panic) => std::panic::resume_unwind(Box::new(format!(
                "input {}: {}",
                file.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            ))),
        }
    }
    // The corpus is found and most of it makes requests.
    assert!(
        requests > files.len() / 2,
        "{requests} requests from {} files",
        files.len()
    );
    eprintln!("{requests} requests from {} files", files.len());
}
