//! `cargo klue`: starts a new klue service repository (`cargo klue new <dir> --name <service>`).
//!
//! Installed with `cargo install klue-cli` (or `--path crates/klue-cli` from a klue checkout);
//! cargo runs it for `cargo klue ...` and passes `klue` as its first argument.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo klue",
    bin_name = "cargo klue",
    version,
    about = "klue for cargo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new service repository: API contract, handlers, acceptance suite, environments,
    /// xtask, CI and README.
    New(klue_cli::new::Args),
}

fn main() -> ExitCode {
    // `cargo klue new` runs `cargo-klue klue new`; a direct `cargo-klue new` works too.
    let args = std::env::args_os()
        .enumerate()
        .filter(|(index, arg)| !(*index == 1 && arg == "klue"))
        .map(|(_, arg)| arg);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => return klue_cli::usage_error(error),
    };
    match cli.command {
        Command::New(args) => match klue_cli::new::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}
