//! `cargo xtask <verb>`: klue's verbs. Each verb lives in its own module.

mod accept;
mod bench;
mod codegen;
mod deploy;
mod dev_defaults;
mod diff;
mod image;
mod podman;
mod push;
mod reliability;
mod test;
mod token;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "klue's verbs: test, token, codegen, accept, bench, ..."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Run the acceptance suite against --local (built and started here) or --host <url>.
    Accept(accept::Args),
    /// Benchmark klue against bare axum, klue-microservice and Connexion (wrk, same run).
    Bench(bench::Args),
    /// Print the Rust code generated from apis/ (models, server trait, client) for one API.
    Codegen(codegen::Args),
    /// Deploy to an environment: tests, image, push, then create / update / blue-green.
    Deploy(deploy::DeployArgs),
    /// Terminate an environment (keeps its secrets unless --purge-secrets).
    Destroy(deploy::DestroyArgs),
    /// Compare infra's config with AWS: exit 0 no change, 2 changes, 1 error.
    Diff(diff::Args),
    /// Check the live environments for drift from infra (Markdown to $GITHUB_STEP_SUMMARY).
    Drift(diff::DriftArgs),
    /// Build the service as a static binary and a reproducible OCI image (no Docker daemon).
    Image(image::Args),
    /// Push the image over the OCI distribution API to a registry or to Amazon ECR.
    Push(push::Args),
    /// Reliability suite: contract fuzzing, cargo-fuzz targets, load (see docs/reliability.md).
    Reliability(reliability::Args),
    /// Swap back to the kept previous environment, or redeploy the previous version.
    Rollback(deploy::RollbackArgs),
    /// Health, version, URL and recent events of an environment.
    Status(deploy::StatusArgs),
    /// Run every check CI runs: rustfmt, clippy, and the whole test suite (installs the test tools).
    Test(test::Args),
    /// Print a JWT signed with KLUE_JWT_SECRET for KLUE_JWT_AUDIENCE (for curl and tests).
    Token(token::Args),
}

/// The exit code of a usage error (sysexits' EX_USAGE). Not 2: `diff` and `drift` exit 2 for
/// "changes found", and a typo in a CI job must not read as drift.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                // --help and --version
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.verb {
        Verb::Accept(args) => accept::run(args),
        Verb::Bench(args) => bench::run(args),
        Verb::Codegen(args) => codegen::run(args),
        Verb::Deploy(args) => deploy::deploy(args),
        Verb::Destroy(args) => deploy::destroy(args),
        Verb::Diff(args) => diff::run(args),
        Verb::Drift(args) => diff::drift(args),
        Verb::Image(args) => image::run(args),
        Verb::Push(args) => push::run(args),
        Verb::Reliability(args) => reliability::run(args),
        Verb::Rollback(args) => deploy::rollback(args),
        Verb::Status(args) => deploy::status(args),
        Verb::Test(args) => test::run(args),
        Verb::Token(args) => token::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
