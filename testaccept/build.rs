//! Generates the typed clients (and models) of every API in `../apis` into
//! `$OUT_DIR/klue_api.rs`, included by `src/api.rs`. No server traits: this crate only calls.

fn main() -> std::process::ExitCode {
    klue_codegen::Config::new("../apis")
        .embed_specs(false)
        .build_script()
}
