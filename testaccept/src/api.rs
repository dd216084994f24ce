//! The code generated from `apis/` by `klue-codegen` (see `build.rs`): per API, `models`,
//! `responses` and the typed `client`.

// The suite uses only part of the generated API.
#![allow(dead_code, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/klue_api.rs"));
