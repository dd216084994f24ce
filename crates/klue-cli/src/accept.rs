//! `cargo xtask accept`: runs the project's acceptance suite against a target and prints a
//! summary table (or JSON with `--json`); exits non-zero when any check fails.
//!
//! A target is anything that yields a base URL (and a way to get a token) and is stopped
//! afterwards: [`AcceptTarget`]. Two exist here:
//! - `--local`: [`LocalService`] builds the service, starts it on a free loopback port with a
//!   JWT secret and audience (the environment's, else test values), waits for `/ping`, and stops
//!   it with SIGTERM (its clean exit is reported as the `stops_on_sigterm` row);
//! - `--host <url>`: [`RemoteHost`], a running deployment; the token comes from
//!   `KLUE_JWT_TOKEN`, or is minted from `KLUE_JWT_SECRET` and `KLUE_JWT_AUDIENCE`.
//!
//! - `--image [REF]`: [`crate::podman::ImageTarget`], the image running in podman (built with
//!   `cargo xtask image` when REF is omitted); `podman stop` must return within 2 s.

use crate::Project;
use crate::target::{AcceptTarget, LOCAL_AUDIENCE, LOCAL_SECRET, free_port, ping};
use crate::workspace::{self, cargo};
use anyhow::{Context, Result, bail};
use klue_accept::{Check, Target, TestResult};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["local", "host", "image"])))]
pub struct Args {
    /// Build the service, start it on a free loopback port, test it, and stop it (SIGTERM).
    #[arg(long)]
    local: bool,
    /// Test the service running at this base URL (scheme, host and port). The token comes from
    /// KLUE_JWT_TOKEN, or is minted from KLUE_JWT_SECRET and KLUE_JWT_AUDIENCE;
    /// KLUE_NO_SSL_CHECK=1 accepts a self-signed certificate.
    #[arg(long, value_name = "URL")]
    host: Option<String>,
    /// Run the image in podman and test it, then stop and remove it. Without REF, build it
    /// (`cargo xtask image`); REF may be an oci-archive file or an image reference.
    #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
    image: Option<String>,
    /// Print the results as JSON on stdout (progress and logs go to stderr).
    #[arg(long)]
    json: bool,
    /// Run only the checks whose name contains this text (repeatable).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// With --local: start this service binary instead of building one.
    #[arg(long, value_name = "PATH", env = "KLUE_SERVICE_BIN")]
    service_bin: Option<PathBuf>,
}

impl Args {
    /// Starts the target the arguments name.
    fn target(&self, project: &Project) -> Result<Box<dyn AcceptTarget>> {
        if self.local {
            let binary = match &self.service_bin {
                Some(path) => path.clone(),
                None => build_service(project)?,
            };
            return Ok(Box::new(LocalService::start(&binary)?));
        }
        if let Some(reference) = &self.image {
            return Ok(Box::new(crate::podman::ImageTarget::start(
                project, reference,
            )?));
        }
        if let Some(url) = &self.host {
            return Ok(Box::new(RemoteHost::from_env(url)?));
        }
        bail!("name a target: --local or --host <url>")
    }
}

/// Runs the verb.
pub fn run(project: &Project, args: Args) -> Result<ExitCode> {
    let checks: Vec<Check> = project
        .suite()
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|o| c.name.contains(o.as_str())))
        .collect();
    if checks.is_empty() {
        bail!("no check matches --only {:?}", args.only);
    }
    let mut target = args.target(project)?;
    let report = run_against(target.as_mut(), &checks);
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            // Still stop what was started before giving up.
            let _ = target.stop();
            return Err(error);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    let logs = if report.passed() { None } else { target.logs() };
    if let Some(logs) = logs {
        eprintln!("--- logs of {} ---\n{logs}", target.describe());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The results of one run.
pub struct Report {
    pub target: String,
    pub results: Vec<TestResult>,
}

/// Runs `checks` against `target`, then stops it; the stop's own rows are appended.
pub fn run_against(target: &mut dyn AcceptTarget, checks: &[Check]) -> Result<Report> {
    eprintln!(
        "running {} acceptance checks against {}",
        checks.len(),
        target.describe()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut results = runtime.block_on(klue_accept::run_checks(target.target(), checks));
    drop(runtime);
    results.extend(target.stop()?);
    Ok(Report {
        target: target.target().base_url.clone(),
        results,
    })
}

impl Report {
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// `test | result | duration`, then the failures' messages, then `N passed, N failed`.
    pub fn table(&self) -> String {
        let width = self
            .results
            .iter()
            .map(|r| r.name.len())
            .chain([4])
            .max()
            .unwrap_or(4);
        let mut out = format!(
            "\n{:<width$}  {:<6}  {:>9}\n{}\n",
            "test",
            "result",
            "duration",
            "-".repeat(width + 19)
        );
        for r in &self.results {
            let verdict = if r.passed { "ok" } else { "FAILED" };
            out.push_str(&format!(
                "{:<width$}  {verdict:<6}  {:>6} ms\n",
                r.name,
                r.duration.as_millis()
            ));
        }
        let failed: Vec<&TestResult> = self.results.iter().filter(|r| !r.passed).collect();
        if !failed.is_empty() {
            out.push_str("\nfailures:\n");
            for r in failed {
                out.push_str(&format!("  {}: {}\n", r.name, r.message));
            }
        }
        out.push_str(&format!(
            "\naccept: {}\n",
            klue_accept::summary_line(&self.results)
        ));
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let passed = self.results.iter().filter(|r| r.passed).count();
        serde_json::json!({
            "target": self.target,
            "passed": self.passed(),
            "summary": { "passed": passed, "failed": self.results.len() - passed },
            "results": self.results,
        })
    }
}

/// A service already running somewhere: nothing to start or stop.
pub struct RemoteHost {
    target: Target,
}

impl RemoteHost {
    /// The service at `url`, with the token settings of the environment.
    pub fn from_env(url: &str) -> Result<RemoteHost> {
        let target = Target::from_lookup(|name| {
            if name == "KLUE_BASE_URL" {
                Some(url.to_string())
            } else {
                std::env::var(name).ok()
            }
        })?;
        Ok(RemoteHost { target })
    }

    /// The service a ready [`Target`] describes.
    pub fn from_target(target: Target) -> RemoteHost {
        RemoteHost { target }
    }
}

impl AcceptTarget for RemoteHost {
    fn describe(&self) -> String {
        self.target.base_url.clone()
    }

    fn target(&self) -> &Target {
        &self.target
    }

    fn stop(&mut self) -> Result<Vec<TestResult>> {
        Ok(Vec::new())
    }
}

/// How long a local service gets to answer `/ping`, and to exit after SIGTERM.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the service's output kept for the report.
const LOG_LINES: usize = 200;

/// Builds the project's service binary with cargo and returns its path.
pub fn build_service(project: &Project) -> Result<PathBuf> {
    let package = project.service_package_name();
    let binary = project.service_binary_name();
    eprintln!("building the service (cargo build -p {package} --bin {binary})");
    let output = cargo()
        .current_dir(workspace::root())
        .args([
            "build",
            "--package",
            package,
            "--bin",
            binary,
            "--message-format",
            "json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build -p {package} failed with {}", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == binary
                && m["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build -p {package} reported no executable {binary}"))
}

/// The service binary running on a free loopback port; killed on drop if not stopped.
pub struct LocalService {
    child: Option<Child>,
    pid: u32,
    target: Target,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl LocalService {
    /// Starts `binary` with the environment's JWT secret and audience (else
    /// [`LOCAL_SECRET`] and [`LOCAL_AUDIENCE`]) and waits until `/ping` answers 200.
    pub fn start(binary: &std::path::Path) -> Result<LocalService> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secret = env("KLUE_JWT_SECRET").unwrap_or_else(|| LOCAL_SECRET.to_string());
        let audience = env("KLUE_JWT_AUDIENCE").unwrap_or_else(|| LOCAL_AUDIENCE.to_string());
        let issuer = env("KLUE_JWT_ISSUER");
        let port = free_port()?;
        let mut cmd = Command::new(binary);
        cmd.args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .env("KLUE_JWT_SECRET", &secret)
            .env("KLUE_JWT_AUDIENCE", &audience)
            .env_remove("KLUE_JWT_JWKS")
            .env_remove("PORT")
            .env_remove("KLUE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if env("KLUE_DRAIN_SECONDS").is_none() {
            cmd.env("KLUE_DRAIN_SECONDS", "5");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut lines = output.lock().unwrap_or_else(PoisonError::into_inner);
                    if lines.len() >= LOG_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(line);
                }
            });
        }
        // A token from the environment wins (e.g. to test with a wrong one); else mint.
        let mut target = Target::new(format!("http://127.0.0.1:{port}")).with_secret(
            &secret,
            &audience,
            issuer.as_deref(),
        );
        if let Some(token) = env("KLUE_JWT_TOKEN") {
            target.auth = klue_accept::Auth::Token(token);
        }
        let mut service = LocalService {
            pid: child.id(),
            child: Some(child),
            target,
            output,
        };
        service.wait_ready(port)?;
        Ok(service)
    }

    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(port) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the service exited ({status}) before answering /ping:\n{}",
                    self.output_text()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the service did not answer /ping within {READY_TIMEOUT:?}:\n{}",
                    self.output_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output_text(&self) -> String {
        let lines = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl AcceptTarget for LocalService {
    fn describe(&self) -> String {
        format!(
            "local service (pid {}) at {}",
            self.pid, self.target.base_url
        )
    }

    fn target(&self) -> &Target {
        &self.target
    }

    /// SIGTERM, then wait up to [`STOP_TIMEOUT`] for a clean exit (SIGKILL after that).
    fn stop(&mut self) -> Result<Vec<TestResult>> {
        let Some(mut child) = self.child.take() else {
            return Ok(Vec::new());
        };
        let started = Instant::now();
        let pid = i32::try_from(child.id()).context("the service's pid does not fit a pid_t")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .context("sending SIGTERM to the service")?;
        let message = loop {
            if let Some(status) = child.try_wait()? {
                break if status.success() {
                    String::new()
                } else {
                    format!("the service exited with {status} after SIGTERM")
                };
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break format!("the service still ran {STOP_TIMEOUT:?} after SIGTERM (killed)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(vec![TestResult {
            name: "stops_on_sigterm".to_string(),
            passed: message.is_empty(),
            duration: started.elapsed(),
            message,
        }])
    }

    fn logs(&self) -> Option<String> {
        Some(self.output_text())
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, passed: bool, message: &str) -> TestResult {
        TestResult {
            name: name.into(),
            passed,
            duration: Duration::from_millis(7),
            message: message.into(),
        }
    }

    #[test]
    fn the_table_names_failures_and_counts() {
        let report = Report {
            target: "http://x".into(),
            results: vec![
                result("has_ping", true, ""),
                result("has_auth_version", false, "assertion `a` failed: b"),
            ],
        };
        let table = report.table();
        assert!(table.contains("has_ping          ok"), "{table}");
        assert!(table.contains("has_auth_version  FAILED"), "{table}");
        assert!(
            table.contains("  has_auth_version: assertion `a` failed: b"),
            "{table}"
        );
        assert!(table.ends_with("accept: 1 passed, 1 failed\n"), "{table}");
        assert!(!report.passed());
        let json = report.json();
        assert_eq!(json["passed"], false);
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["results"][1]["name"], "has_auth_version");
    }

    #[test]
    fn ping_is_false_without_a_server() {
        let port = free_port().unwrap_or(9);
        assert!(!ping(port));
    }
}
