//! Fuzz target: the request path of the klue runtime, through the router and through the
//! server's own path (`Front`), comparing their answers on every input. The request, the
//! checks and the fixture are in `fuzz/common/request_path.rs`, shared with the stable test
//! that replays this target's corpus (`crates/klue/tests/request_path_corpus.rs`).
#![no_main]

#[path = "../common/request_path.rs"]
mod request_path;

libfuzzer_sys::fuzz_target!(|input: request_path::Input| {
    request_path::check(&input);
});
