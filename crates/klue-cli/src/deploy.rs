//! `cargo xtask deploy <env>`, `rollback <env>`, `destroy <env>` and `status <env>`.
//!
//! deploy = acceptance suite on a local build -> image -> acceptance suite on the image (podman)
//! -> push to ECR -> `klue_deploy::apply` (bundle, version, secrets, create / update /
//! blue-green with the acceptance suite against the new environment). The plan is shown and
//! confirmed on a terminal; `--yes` confirms in CI. Exit 0: deployed (or nothing to do);
//! 1: failed, with what state things are in and what to run next.

use crate::accept::{self, LocalService, RemoteHost};
use crate::aws_args::{Common, DeployArgs, DestroyArgs, PushArgs, RollbackArgs, StatusArgs};
use crate::target::AcceptTarget;
use crate::{Project, dev_defaults, image, podman, push};
use anyhow::{Context, Result, bail};
use klue_deploy::apply::{Deployer, Outcome, Progress, Release, SecretPurge, Settings};
use klue_deploy::observe::{Clients, preflight, region_note};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

/// Progress on stderr: EB events as lines, a spinner on a terminal, confirmation prompts.
struct Console {
    tty: bool,
    assume_yes: bool,
    last: Mutex<(String, usize)>,
}

impl Console {
    fn new(assume_yes: bool) -> Console {
        Console {
            tty: std::io::stderr().is_terminal(),
            assume_yes,
            last: Mutex::new((String::new(), 0)),
        }
    }
}

impl Progress for Console {
    fn line(&self, text: &str) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{text}");
    }

    fn status(&self, environment: &str, status: &str, health: &str) {
        let text = format!("{environment}: {status} {health}");
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if self.tty {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            last.1 = (last.1 + 1) % FRAMES.len();
            eprint!("\r\x1b[K{} {text}", FRAMES[last.1]);
            let _ = std::io::stderr().flush();
        } else if last.0 != text {
            eprintln!("{text}");
        }
        last.0 = text;
    }

    fn done(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.0.clear();
    }

    fn confirm(&self, question: &str) -> bool {
        if self.assume_yes {
            eprintln!("{question} yes (--yes)");
            return true;
        }
        if !(self.tty && std::io::stdin().is_terminal()) {
            eprintln!("{question} not confirmed: not a terminal (pass --yes to confirm in CI)");
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES")
    }
}

fn settings(common: &Common) -> Settings {
    Settings {
        ready_timeout: Duration::from_secs(common.ready_timeout),
        timeout: Duration::from_secs(common.timeout),
        ..Settings::default()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn deployment(project: &Project) -> Result<klue_deploy::Deployment> {
    let deployment = project.environments()?;
    deployment.validate()?;
    Ok(deployment)
}

/// Runs every acceptance check of the project against `target`; `Err` summarizes the
/// failures.
fn acceptance(project: &Project, target: &mut dyn AcceptTarget) -> Result<(), String> {
    let report = accept::run_against(target, &project.suite()).map_err(|e| format!("{e:#}"))?;
    eprint!("{}", report.table());
    if report.passed() {
        return Ok(());
    }
    if let Some(logs) = target.logs() {
        eprintln!("--- logs of {} ---\n{logs}", target.describe());
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect();
    Err(format!(
        "{} check(s) failed: {}",
        failed.len(),
        failed.join("; ")
    ))
}

/// The acceptance suite against a deployed environment: the token is minted with the
/// deployer's `KLUE_JWT_SECRET` for the audience the environment is configured with.
fn accept_environment(
    project: &Project,
    env: &klue_deploy::Environment,
    url: &str,
) -> Result<(), String> {
    let audience = env.env_vars.get("KLUE_JWT_AUDIENCE").cloned();
    let target = klue_accept::Target::from_lookup(|name| match name {
        "KLUE_BASE_URL" => Some(url.to_string()),
        "KLUE_JWT_AUDIENCE" if audience.is_some() => audience.clone(),
        other => std::env::var(other).ok(),
    })
    .map_err(|e| e.to_string())?;
    let mut host = RemoteHost::from_target(target);
    acceptance(project, &mut host)
}

/// The image to deploy: built here (and tested in podman), or read from `--prebuilt`.
fn image(project: &Project, args: &DeployArgs) -> Result<image::Built> {
    let built = match &args.prebuilt {
        Some(dir) => {
            let path = dir.join("image.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {} (from cargo xtask image)", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => image::build(project, &image::Args::default())?,
    };
    eprintln!("image {} {}", built.reference, built.digest);
    if !args.skip_image_tests {
        let mut target = podman::ImageTarget::start(project, &built.archive.to_string_lossy())?;
        if let Err(failure) = acceptance(project, &mut target) {
            bail!(
                "the acceptance suite failed on the image: {failure}. Nothing was pushed or deployed."
            );
        }
    }
    Ok(built)
}

/// `cargo xtask deploy <env>`.
pub fn deploy(project: &Project, args: DeployArgs) -> Result<ExitCode> {
    let deployment = deployment(project)?;
    let env = deployment
        .environment(&args.env)
        .with_context(|| {
            format!(
                "no environment {:?} in the project's infra (known: {})",
                args.env,
                deployment.environment_names().join(", ")
            )
        })?
        .clone();
    let dev_defaults = dev_defaults::load();
    dev_defaults.refuse_secrets(&env.secrets)?;
    if let Some(note) = region_note(&deployment.region) {
        eprintln!("{note}");
    }
    let runtime = runtime()?;
    let clients = runtime.block_on(Clients::from_env(&deployment.region));
    // Fail fast: credentials, STS and read access to EB, before anything is built.
    let caller = runtime
        .block_on(preflight(&clients, &deployment))
        .context("AWS is not usable for this deploy; nothing was built or changed")?;
    eprintln!(
        "AWS account {} ({}), region {}",
        caller.account, caller.arn, deployment.region
    );
    let console = Console::new(args.common.yes);
    let secret_values = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut deployer = Deployer {
        clients: &clients,
        deployment: &deployment,
        progress: &console,
        settings: Settings {
            keep_previous: args.keep_previous,
            grace: Duration::from_secs(args.grace),
            ..settings(&args.common)
        },
    };
    // The plan, and the one question, before the first change of any kind (the image build,
    // the ECR repository, the push).
    let preview = runtime.block_on(deployer.preview(&args.env, &secret_values))?;
    if !console.confirm(&format!(
        "Build, test and push the image, then deploy it to {}?",
        args.env
    )) {
        bail!("not confirmed: nothing was built, pushed or changed");
    }
    if !args.skip_local_tests {
        let binary = accept::build_service(project)?;
        let mut local = LocalService::start(&binary)?;
        if let Err(failure) = acceptance(project, &mut local) {
            bail!(
                "the acceptance suite failed on the local build: {failure}. Nothing was built or deployed."
            );
        }
    }
    let built = image(project, &args)?;
    let pushed = runtime.block_on(push::push(
        &PushArgs {
            registry: args.registry.clone(),
            repository: Some(deployment.image_repository.clone()),
            tag: Some(built.tag.clone()),
            ecr: true,
            layout: Some(built.layout.clone()),
            insecure: false,
            region: Some(deployment.region.clone()),
        },
        &built.layout,
    ))?;
    eprintln!("pushed {}", pushed.by_digest);
    let release = Release {
        image: pushed.by_digest.clone(),
        version: built.tag.clone(),
    };
    deployer.settings.confirmed = Some(preview);
    let outcome = runtime.block_on(async {
        let accept = |url: &str| accept_environment(project, &env, url);
        deployer
            .deploy(&args.env, &release, &secret_values, &accept)
            .await
    })?;
    let summary = match outcome {
        Outcome::NoChange => format!(
            "{}: no changes (healthy, runs {}, acceptance passed)",
            args.env, built.tag
        ),
        Outcome::Created => format!("{}: created", args.env),
        Outcome::Updated => format!("{}: updated", args.env),
        Outcome::Swapped { live, kept } => match kept {
            Some(old) => format!("{}: {live} is live; {old} kept for rollback", args.env),
            None => format!("{}: {live} is live", args.env),
        },
    };
    println!("deploy: {summary}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` with a [`Deployer`] for the project's environments.
fn with_deployer<T>(
    project: &Project,
    assume_yes: bool,
    settings: Settings,
    work: impl AsyncFnOnce(&Deployer<'_>) -> Result<T, klue_deploy::apply::ApplyError>,
) -> Result<T> {
    let deployment = deployment(project)?;
    if let Some(note) = region_note(&deployment.region) {
        eprintln!("{note}");
    }
    let console = Console::new(assume_yes);
    let result = runtime()?.block_on(async {
        let clients = Clients::from_env(&deployment.region).await;
        let deployer = Deployer {
            clients: &clients,
            deployment: &deployment,
            progress: &console,
            settings,
        };
        work(&deployer).await
    })?;
    Ok(result)
}

/// `cargo xtask rollback <env>`.
pub fn rollback(project: &Project, args: RollbackArgs) -> Result<ExitCode> {
    let message = with_deployer(
        project,
        args.common.yes,
        settings(&args.common),
        async |d| d.rollback(&args.env, args.to.as_deref()).await,
    )?;
    println!("rollback: {message}");
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask destroy <env>`.
pub fn destroy(project: &Project, args: DestroyArgs) -> Result<ExitCode> {
    let message = with_deployer(
        project,
        args.common.yes,
        settings(&args.common),
        async |d| {
            let purge = match (args.purge_secrets, args.without_recovery) {
                (false, _) => SecretPurge::Keep,
                (true, false) => SecretPurge::WithRecovery,
                (true, true) => SecretPurge::WithoutRecovery,
            };
            d.destroy(&args.env, purge).await
        },
    )?;
    println!("destroy: {message}");
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask status <env>`.
pub fn status(project: &Project, args: StatusArgs) -> Result<ExitCode> {
    let text = with_deployer(project, false, Settings::default(), async |d| {
        d.status(&args.env, args.events).await
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
