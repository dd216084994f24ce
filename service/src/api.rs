//! The code generated from `apis/` by `klue-codegen` (see `build.rs`): per API, `models`,
//! `responses`, `client`, and for served APIs the `server` trait; plus `specs()`, the specs
//! embedded in the binary. Print it with `cargo xtask codegen helloworld`.

// A binary uses only part of the generated API (e.g. not every client method).
#![allow(dead_code)]

include!(concat!(env!("OUT_DIR"), "/klue_api.rs"));
