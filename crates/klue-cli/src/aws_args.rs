//! The flags of the verbs that talk to AWS (`push`, `diff`, `drift`, `deploy`, `status`,
//! `rollback`, `destroy`). They are compiled in every build, with or without the `aws` feature,
//! so `--help` and flag errors are the same before the xtask is rebuilt with the AWS SDK.

use std::path::PathBuf;

/// Options every mutating verb shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Answer yes to the confirmation (needed when not on a terminal, e.g. in CI).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Seconds each AWS operation (create, update, swap, terminate) may take.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub timeout: u64,
    /// Seconds to wait for a busy environment to become Ready before starting.
    #[arg(long, default_value_t = 1200, value_name = "SECONDS")]
    pub ready_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The environment (`staging`, `live`, ...).
    pub env: String,
    #[command(flatten)]
    pub common: Common,
    /// Skip the acceptance suite on a local build of the service.
    #[arg(long)]
    pub skip_local_tests: bool,
    /// Skip the acceptance suite on the image (podman).
    #[arg(long)]
    pub skip_image_tests: bool,
    /// Deploy the image already built in this directory (`cargo xtask image --out DIR`)
    /// instead of building one.
    #[arg(long, value_name = "DIR")]
    pub prebuilt: Option<PathBuf>,
    /// Push to this registry host instead of ECR's (the ECR token is still used).
    #[arg(long)]
    pub registry: Option<String>,
    /// Blue/green: keep the previous environment after the swap, for `cargo xtask rollback`.
    #[arg(long)]
    pub keep_previous: bool,
    /// Blue/green: seconds the previous environment keeps running after the swap.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub grace: u64,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The environment.
    pub env: String,
    /// Redeploy this application version label instead of the previous one.
    #[arg(long, value_name = "LABEL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args, Debug)]
pub struct DestroyArgs {
    /// The environment.
    pub env: String,
    /// Also delete its secrets from Secrets Manager (recoverable for 7 days; a deploy in that
    /// window restores them).
    #[arg(long)]
    pub purge_secrets: bool,
    /// With --purge-secrets: delete the secrets at once, without the 7-day recovery window.
    #[arg(long, requires = "purge_secrets")]
    pub without_recovery: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The environment.
    pub env: String,
    /// How many recent events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The environment to compare (`staging`, `live`, ...).
    pub env: Option<String>,
    /// Compare every environment.
    #[arg(long, conflicts_with = "env")]
    pub all: bool,
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct DriftArgs {
    /// Only this environment (default: all).
    pub env: Option<String>,
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `cargo xtask push`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PushArgs {
    /// Registry URL or host[:port] (e.g. 127.0.0.1:5000, https://ghcr.io,
    /// 123456789012.dkr.ecr.eu-west-1.amazonaws.com). With --ecr, defaults to ECR's endpoint.
    #[arg(long)]
    pub registry: Option<String>,
    /// Repository in the registry (default: the project's image name).
    #[arg(long)]
    pub repository: Option<String>,
    /// Tag (default: the image's tag, the service version).
    #[arg(long)]
    pub tag: Option<String>,
    /// Use Amazon ECR through the AWS SDK: create the repository if missing, authenticate with
    /// GetAuthorizationToken. Implied by an ECR registry host.
    #[arg(long)]
    pub ecr: bool,
    /// Push this OCI layout directory instead of building the image first.
    #[arg(long)]
    pub layout: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// The ECR region (default: the region of an ECR registry host, else AWS_REGION). `deploy`
    /// passes the deployment's region, so the image lands where the environments run.
    #[arg(long)]
    pub region: Option<String>,
}
