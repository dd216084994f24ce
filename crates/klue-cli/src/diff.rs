//! `cargo xtask diff [env | --all] [--json]` and `cargo xtask drift`: compare `infra`'s config
//! with what runs in AWS. Exit 0: no change; 2: changes (drift); 1: error.

use crate::Project;
use crate::aws_args::{DiffArgs, DriftArgs};
use anyhow::{Context, Result, bail};
use klue_deploy::observe::{Clients, observe};
use klue_deploy::{Desired, Plan, plan, render};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn compute(project: &Project, env: Option<&str>, read_secret_values: bool) -> Result<Plan> {
    let deployment = project.environments()?;
    deployment.validate()?;
    if let Some(name) = env
        && deployment.environment(name).is_none()
    {
        bail!(
            "no environment {name:?} in infra (known: {})",
            deployment.environment_names().join(", ")
        );
    }
    if let Some(note) = klue_deploy::observe::region_note(&deployment.region) {
        eprintln!("{note}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let observed = runtime
        .block_on(async {
            let clients = Clients::from_env(&deployment.region).await;
            observe(&clients, &deployment).await
        })
        .context("reading the live state from AWS")?;
    let mut desired = Desired::new(&deployment);
    if read_secret_values {
        // Only fingerprints are kept; the values are dropped here.
        // A development default (cargo's `[env]`) is not the deployer's value: not compared.
        let dev = crate::dev_defaults::load();
        desired = desired.with_secret_values(&observed, |name| {
            std::env::var(name).ok().filter(|v| !dev.is_default(v))
        });
    }
    let full = plan(&desired, &observed);
    Ok(match env {
        Some(name) => full.only(name),
        None => full,
    })
}

fn print(plan: &Plan, json: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", render::json(plan))?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write!(out, "{}", render::table(plan, colour))?;
    }
    Ok(if plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `cargo xtask diff`.
pub fn run(project: &Project, args: DiffArgs) -> Result<ExitCode> {
    if args.env.is_none() && !args.all {
        bail!("name an environment (cargo xtask diff staging) or pass --all");
    }
    let plan = compute(project, args.env.as_deref(), true)?;
    print(&plan, args.json)
}

/// `cargo xtask drift`.
pub fn drift(project: &Project, args: DriftArgs) -> Result<ExitCode> {
    // Drift compares the live environments with the config only: secret values are not read.
    let plan = compute(project, args.env.as_deref(), false)?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.to_string_lossy()))?;
        let body = if plan.has_changes() {
            render::markdown(&plan)
        } else {
            format!(
                "## Drift: {}\n\nNo drift: every environment matches `infra`.\n",
                plan.application
            )
        };
        file.write_all(body.as_bytes())?;
    }
    let code = print(&plan, args.json)?;
    if plan.has_changes() {
        eprintln!("drift: the live environments differ from infra (see above)");
    }
    Ok(code)
}
