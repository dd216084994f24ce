//! klue-cli: the verbs that take a klue service from its repository to production, as a
//! library, and the `cargo klue` command that starts a new service.
//!
//! A service repository's `xtask/src/main.rs` describes its project with a [`Project`] (the
//! service package, the image name, the environments from its `infra` crate, the acceptance
//! suite from its `testaccept` crate) and hands it over:
//!
//! ```no_run
//! # fn deployment() -> klue_deploy::Deployment { unimplemented!() }
//! # fn suite() -> Vec<klue_accept::Check> { Vec::new() }
//! fn main() -> std::process::ExitCode {
//!     klue_cli::Project::new("service")
//!         .image_name("orders")
//!         .deployment(deployment)
//!         .acceptance(suite)
//!         .main()
//! }
//! ```
//!
//! `cargo xtask <verb>` then has every verb of [`Verb`]: `accept`, `image`, `push`, `diff`,
//! `drift`, `deploy`, `status`, `rollback`, `destroy`, `token`, `codegen`.
//!
//! **What a verb compiles.** The verbs that talk to AWS (`push`, `diff`, `drift`, `deploy`,
//! `status`, `rollback`, `destroy`) need the AWS SDK, which takes many minutes to build; they
//! are behind the `aws` feature. Without it, such a verb rebuilds the xtask once with
//! `--features klue-cli/aws` and runs it there ([`Project::main`] does this), so `token`,
//! `codegen`, `accept` and `image` never pay for the SDK.
//!
//! Module map: [`target`] (what the acceptance suite runs against), [`accept`] (local and
//! remote targets, the runner's report), [`image`] (static binary
//! and reproducible OCI image, no daemon), [`podman`] (runs an image for the suite), `push`
//! (OCI distribution API, ECR), `diff` and `deploy` (the deploy engine `klue-deploy` driven
//! from the command line), [`token`], [`codegen`], [`new`] (`cargo klue new`), [`workspace`]
//! (paths and cargo). This crate is not the deploy engine (`klue-deploy`), the acceptance
//! harness (`klue-accept`) nor the runtime (`klue`).

pub mod accept;
pub mod aws_args;
pub mod codegen;
#[cfg(feature = "aws")]
pub mod deploy;
pub mod dev_defaults;
#[cfg(feature = "aws")]
pub mod diff;
pub mod image;
pub mod new;
pub mod podman;
mod project;
#[cfg(feature = "aws")]
pub mod push;
pub mod target;
pub mod token;
pub mod workspace;

pub use project::{AWS_FEATURE, EXIT_USAGE, Project, Verb, usage_error};
