//! `cargo xtask codegen [<api>]`: prints the Rust code klue-codegen generates from `apis/`
//! (what `service/build.rs` writes to `OUT_DIR` and `service/src/api.rs` includes).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The API to print (its spec's file stem, e.g. `orders`); every API when omitted.
    api: Option<String>,
    /// The spec folder (relative paths are relative to the workspace root).
    #[arg(long, default_value = "apis")]
    apis_dir: PathBuf,
    /// Print only models, responses and the client, as for an API the service does not serve.
    #[arg(long)]
    client_only: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let dir = if args.apis_dir.is_absolute() {
        args.apis_dir
    } else {
        crate::workspace::root().join(args.apis_dir)
    };
    let mut config = klue_codegen::Config::new(dir).embed_specs(false);
    if !args.client_only {
        config = config.serve_all();
    }
    if let Some(api) = args.api {
        config = config.only(api);
    }
    match config.render() {
        Ok(code) => {
            print!("{code}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
