//! klue-codegen: generates Rust from the API specs at build time.
