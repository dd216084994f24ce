//! Generates the typed API (models, the helloworld server trait, clients for every API) from
//! the specs in `apis/`, into `$OUT_DIR/klue_api.rs` (included by `src/api.rs`).

fn main() -> std::process::ExitCode {
    klue_codegen::Config::new("../apis")
        .serve("helloworld")
        .build_script()
}
