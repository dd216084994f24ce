//! Generates code for `apis/` and for each variant of the spec corpus, every API served, so
//! that compiling this crate checks all generated code compiles (and is clippy-clean).

use std::process::ExitCode;

fn main() -> ExitCode {
    let corpus = "../../klue-spec/tests/fixtures/corpus";
    let configs = [
        klue_codegen::Config::new("../../../apis")
            .serve("helloworld")
            .out_name("helloworld.rs"),
        klue_codegen::Config::new(format!("{corpus}/openapi31"))
            .serve_all()
            .out_name("corpus_openapi31.rs"),
        klue_codegen::Config::new(format!("{corpus}/openapi30"))
            .serve_all()
            .out_name("corpus_openapi30.rs"),
        klue_codegen::Config::new(format!("{corpus}/swagger2"))
            .serve_all()
            .out_name("corpus_swagger2.rs"),
        klue_codegen::Config::new("../tests/fixtures/edge")
            .serve_all()
            .out_name("edge.rs"),
    ];
    for config in configs {
        if config.build_script() != ExitCode::SUCCESS {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
