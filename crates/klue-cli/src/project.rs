//! [`Project`]: what the verbs need to know of a service repository, and [`Verb`]: the verbs.

use crate::aws_args::{
    DeployArgs, DestroyArgs, DiffArgs, DriftArgs, PushArgs, RollbackArgs, StatusArgs,
};
use crate::{accept, codegen, image, token, workspace};
use clap::{Parser, Subcommand};
use klue_accept::Check;
use klue_deploy::Deployment;
use std::process::ExitCode;

/// The exit code of a usage error (sysexits' EX_USAGE). Not 2: `diff` and `drift` exit 2 for
/// "changes found", and a typo in a CI job must not read as drift.
pub const EXIT_USAGE: u8 = 64;

/// The cargo feature of this crate that compiles the verbs talking to AWS.
pub const AWS_FEATURE: &str = "aws";

/// Set on the rebuilt xtask, so that a build still lacking the feature fails instead of
/// starting itself again.
const RERUN_MARKER: &str = "KLUE_CLI_AWS_RERUN";

/// A service repository, as the verbs see it: which package is the service, what its image is
/// called, its environments and its acceptance suite.
#[derive(Clone)]
pub struct Project {
    service_package: String,
    service_binary: String,
    image_name: String,
    xtask_package: String,
    deployment: Option<fn() -> Deployment>,
    acceptance: fn() -> Vec<Check>,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("service_package", &self.service_package)
            .field("service_binary", &self.service_binary)
            .field("image_name", &self.image_name)
            .field("xtask_package", &self.xtask_package)
            .finish_non_exhaustive()
    }
}

impl Project {
    /// A project whose service is the package `service_package` (its binary has the same
    /// name), with the image named after it, no environments and klue's built-in acceptance
    /// checks; the other builder methods say otherwise.
    pub fn new(service_package: impl Into<String>) -> Project {
        let service_package = service_package.into();
        Project {
            service_binary: service_package.clone(),
            image_name: service_package.clone(),
            service_package,
            xtask_package: "xtask".to_string(),
            deployment: None,
            acceptance: klue_accept::builtin_checks,
        }
    }

    /// The binary of the service package, when it is not named like the package.
    pub fn service_binary(mut self, binary: impl Into<String>) -> Project {
        self.service_binary = binary.into();
        self
    }

    /// The image name: the repository in the registry and the `ref.name` of the OCI image.
    pub fn image_name(mut self, name: impl Into<String>) -> Project {
        self.image_name = name.into();
        self
    }

    /// The package of the xtask itself (default `xtask`), rebuilt with the `aws` feature for
    /// the verbs that need it.
    pub fn xtask_package(mut self, package: impl Into<String>) -> Project {
        self.xtask_package = package.into();
        self
    }

    /// The environments (usually `infra::deployment`).
    pub fn deployment(mut self, deployment: fn() -> Deployment) -> Project {
        self.deployment = Some(deployment);
        self
    }

    /// The acceptance suite (usually `klue_accept::suite`).
    pub fn acceptance(mut self, suite: fn() -> Vec<Check>) -> Project {
        self.acceptance = suite;
        self
    }

    /// The service package.
    pub fn service_package_name(&self) -> &str {
        &self.service_package
    }

    /// The service binary.
    pub fn service_binary_name(&self) -> &str {
        &self.service_binary
    }

    /// The image name.
    pub fn image(&self) -> &str {
        &self.image_name
    }

    /// The environments, as the project's config describes them (not validated), or an error
    /// when the project declares none.
    pub fn environments(&self) -> anyhow::Result<Deployment> {
        match self.deployment {
            Some(deployment) => Ok(deployment()),
            None => anyhow::bail!(
                "this project declares no environments: its xtask hands them over with \
                 `Project::deployment(infra::deployment)`"
            ),
        }
    }

    /// The acceptance suite.
    pub fn suite(&self) -> Vec<Check> {
        (self.acceptance)()
    }

    /// Parses the command line as `cargo xtask <verb> ...` and runs the verb: the whole `main`
    /// of a service's xtask.
    pub fn main(&self) -> ExitCode {
        #[derive(Parser)]
        #[command(name = "cargo xtask", about = "The verbs of a klue service")]
        struct Cli {
            #[command(subcommand)]
            verb: Verb,
        }
        match Cli::try_parse() {
            Ok(cli) => self.run(cli.verb),
            Err(error) => usage_error(error),
        }
    }

    /// Runs one verb; errors are printed, and the exit code says how it went.
    pub fn run(&self, verb: Verb) -> ExitCode {
        if verb.needs_aws() && !cfg!(feature = "aws") {
            return self.rerun_with_aws(verb.name());
        }
        let result = match verb {
            Verb::Accept(args) => accept::run(self, args),
            Verb::Codegen(args) => codegen::run(args),
            Verb::Image(args) => image::run(self, &args),
            Verb::Token(args) => token::run(args),
            #[cfg(feature = "aws")]
            Verb::Deploy(args) => crate::deploy::deploy(self, args),
            #[cfg(feature = "aws")]
            Verb::Destroy(args) => crate::deploy::destroy(self, args),
            #[cfg(feature = "aws")]
            Verb::Diff(args) => crate::diff::run(self, args),
            #[cfg(feature = "aws")]
            Verb::Drift(args) => crate::diff::drift(self, args),
            #[cfg(feature = "aws")]
            Verb::Push(args) => crate::push::run(self, args),
            #[cfg(feature = "aws")]
            Verb::Rollback(args) => crate::deploy::rollback(self, args),
            #[cfg(feature = "aws")]
            Verb::Status(args) => crate::deploy::status(self, args),
            #[cfg(not(feature = "aws"))]
            _ => return self.rerun_with_aws("this verb"),
        };
        match result {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }

    /// Runs this same command line again in the xtask built with `--features klue-cli/aws`.
    /// Cargo keeps both builds, so the SDK is compiled once, by the first verb that needs it.
    fn rerun_with_aws(&self, verb: &str) -> ExitCode {
        if std::env::var_os(RERUN_MARKER).is_some() {
            eprintln!(
                "error: {verb} needs klue-cli's `{AWS_FEATURE}` feature, and the xtask rebuilt \
                 with --features klue-cli/{AWS_FEATURE} still lacks it: does the package {} \
                 depend on klue-cli under that name?",
                self.xtask_package
            );
            return ExitCode::FAILURE;
        }
        eprintln!(
            "{verb} talks to AWS: running it in the xtask built with the AWS SDK \
             (cargo run -p {} --features klue-cli/{AWS_FEATURE}; the first build takes minutes)",
            self.xtask_package
        );
        let mut cargo = workspace::cargo();
        cargo
            .current_dir(workspace::root())
            .args(["run", "--quiet", "--package", &self.xtask_package])
            .arg(format!("--features=klue-cli/{AWS_FEATURE}"))
            .arg("--")
            .args(std::env::args_os().skip(1))
            .env(RERUN_MARKER, "1");
        match cargo.status() {
            Ok(status) => match status.code().and_then(|code| u8::try_from(code).ok()) {
                Some(code) => ExitCode::from(code),
                None => ExitCode::FAILURE,
            },
            Err(error) => {
                eprintln!(
                    "error: could not start {}: {error}",
                    workspace::command_line(&cargo)
                );
                ExitCode::FAILURE
            }
        }
    }
}

/// Prints a command-line error and returns its exit code: [`EXIT_USAGE`], or success for
/// `--help` and `--version`.
pub fn usage_error(error: clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The verbs of a service: `cargo xtask <verb>`.
#[derive(Subcommand)]
pub enum Verb {
    /// Run the acceptance suite against --local (built and started here) or --host <url>.
    Accept(accept::Args),
    /// Print the Rust code generated from apis/ (models, server trait, client) for one API.
    Codegen(codegen::Args),
    /// Deploy to an environment: tests, image, push, then create / update / blue-green.
    Deploy(DeployArgs),
    /// Terminate an environment (keeps its secrets unless --purge-secrets).
    Destroy(DestroyArgs),
    /// Compare infra's config with AWS: exit 0 no change, 2 changes, 1 error.
    Diff(DiffArgs),
    /// Check the live environments for drift from infra (Markdown to $GITHUB_STEP_SUMMARY).
    Drift(DriftArgs),
    /// Build the service as a static binary and a reproducible OCI image (no Docker daemon).
    Image(image::Args),
    /// Push the image over the OCI distribution API to a registry or to Amazon ECR.
    Push(PushArgs),
    /// Swap back to the kept previous environment, or redeploy the previous version.
    Rollback(RollbackArgs),
    /// Health, version, URL and recent events of an environment.
    Status(StatusArgs),
    /// Print a JWT signed with KLUE_JWT_SECRET for KLUE_JWT_AUDIENCE (for curl and tests).
    Token(token::Args),
}

impl Verb {
    /// Whether the verb talks to AWS (and so needs the `aws` feature).
    pub fn needs_aws(&self) -> bool {
        !matches!(
            self,
            Verb::Accept(_) | Verb::Codegen(_) | Verb::Image(_) | Verb::Token(_)
        )
    }

    /// The verb's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Accept(_) => "accept",
            Verb::Codegen(_) => "codegen",
            Verb::Deploy(_) => "deploy",
            Verb::Destroy(_) => "destroy",
            Verb::Diff(_) => "diff",
            Verb::Drift(_) => "drift",
            Verb::Image(_) => "image",
            Verb::Push(_) => "push",
            Verb::Rollback(_) => "rollback",
            Verb::Status(_) => "status",
            Verb::Token(_) => "token",
        }
    }
}
