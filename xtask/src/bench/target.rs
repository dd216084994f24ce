//! The four servers under test: how to prepare (build, venv), start, and stop each one.

use super::http;
use crate::util;
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// HS256 secret and audience that every target is started with (bench-only values).
pub const JWT_SECRET: &str = "klue-bench-secret-0123456789abcdef";
pub const JWT_AUDIENCE: &str = "klue-bench";

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The klue service (`service/`), release build, JSON logs to a file.
    Klue,
    /// `bench/baseline`: bare axum, the ceiling.
    Baseline,
    /// klue-microservice 0.0.128, the Python original (`bench/klue-microservice`).
    Anchor,
    /// Connexion 3 under uvicorn (`bench/connexion`).
    Connexion,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Klue, Kind::Baseline, Kind::Anchor, Kind::Connexion];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Klue => "klue",
            Kind::Baseline => "baseline",
            Kind::Anchor => "klue-microservice",
            Kind::Connexion => "connexion",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s.trim() {
            "klue" => Some(Kind::Klue),
            "baseline" | "axum" => Some(Kind::Baseline),
            "klue-microservice" | "anchor" | "python" => Some(Kind::Anchor),
            "connexion" => Some(Kind::Connexion),
            _ => None,
        }
    }

    /// What the table says this target is.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Klue => "klue service, release, JSON logs to a file",
            Kind::Baseline => "bare axum + serde, no validation/auth (bench/baseline)",
            Kind::Anchor => "klue-microservice 0.0.128, gunicorn sync, nproc workers",
            Kind::Connexion => "Connexion 3.3 + uvicorn, nproc workers, request validation",
        }
    }
}

/// A target that is ready to start: the command line and environment, and its token.
#[derive(Debug)]
pub struct Prepared {
    pub kind: Kind,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    /// How the port is given: appended as an argument, or through `PORT`.
    port_as_arg: bool,
    /// Where stdout and stderr go (`None`: discarded).
    log: Option<PathBuf>,
    /// A JWT the target accepts.
    pub token: String,
}

/// Everything the preparation needs.
pub struct Setup<'a> {
    pub root: &'a Path,
    pub target_dir: &'a Path,
    pub out_dir: &'a Path,
    pub workers: usize,
    pub klue_token: &'a str,
}

impl Prepared {
    /// The klue service: `<target>/release/service`, built by the caller.
    pub fn klue(cx: &Setup) -> Prepared {
        Prepared {
            kind: Kind::Klue,
            program: cx.target_dir.join("release").join("service"),
            args: vec![],
            env: vec![
                ("KLUE_HOST".into(), "127.0.0.1".into()),
                ("KLUE_JWT_SECRET".into(), JWT_SECRET.into()),
                ("KLUE_JWT_AUDIENCE".into(), JWT_AUDIENCE.into()),
                ("KLUE_LOG_FORMAT".into(), "json".into()),
                ("KLUE_DRAIN_SECONDS".into(), "1".into()),
            ],
            cwd: None,
            port_as_arg: false,
            log: Some(cx.out_dir.join("logs").join("klue.log")),
            token: cx.klue_token.to_string(),
        }
    }

    /// The bare axum baseline: `<target>/release/bench-baseline`.
    pub fn baseline(cx: &Setup) -> Prepared {
        Prepared {
            kind: Kind::Baseline,
            program: cx.target_dir.join("release").join("bench-baseline"),
            args: vec!["--host".into(), "127.0.0.1".into()],
            env: vec![],
            cwd: None,
            port_as_arg: false,
            log: Some(cx.out_dir.join("logs").join("baseline.log")),
            token: cx.klue_token.to_string(),
        }
    }

    /// klue-microservice from `bench/klue-microservice`: `setup.sh` into a venv under the target
    /// dir, a token from `token.sh`.
    pub fn anchor(cx: &Setup) -> Result<Prepared> {
        let dir = cx.root.join("bench").join("klue-microservice");
        let venv = cx.target_dir.join("bench").join("venv-anchor");
        let env = vec![
            ("KLUE_ANCHOR_VENV".to_string(), venv.display().to_string()),
            ("KLUE_JWT_SECRET".to_string(), JWT_SECRET.to_string()),
            ("KLUE_JWT_AUDIENCE".to_string(), JWT_AUDIENCE.to_string()),
        ];
        let mut setup = Command::new(dir.join("setup.sh"));
        setup.envs(env.iter().map(|(k, v)| (k, v)));
        util::run(&mut setup)
            .context("setting up klue-microservice (bench/klue-microservice/setup.sh)")?;
        let out = Command::new(dir.join("token.sh"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::inherit())
            .output()
            .context("running token.sh")?;
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || token.is_empty() {
            bail!("token.sh failed ({})", out.status);
        }
        Ok(Prepared {
            kind: Kind::Anchor,
            program: dir.join("run.sh"),
            args: vec![],
            env,
            cwd: None,
            // run.sh PORT [WORKERS]
            port_as_arg: true,
            // klue-microservice logs about 2 KB per request at DEBUG: to a file, not a terminal.
            log: Some(cx.out_dir.join("logs").join("klue-microservice.log")),
            token,
        })
    }

    /// Connexion under uvicorn from `bench/connexion`, in a venv under the target dir.
    pub fn connexion(cx: &Setup) -> Result<Prepared> {
        let dir = cx.root.join("bench").join("connexion");
        let venv = cx.target_dir.join("bench").join("venv-connexion");
        let python = util::python_venv(&venv, &dir.join("requirements.txt"))
            .context("setting up the Connexion venv")?;
        Ok(Prepared {
            kind: Kind::Connexion,
            program: python,
            args: vec![
                "-m".into(),
                "uvicorn".into(),
                "app:app".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--workers".into(),
                cx.workers.to_string(),
                "--log-level".into(),
                "info".into(),
                "--port".into(),
            ],
            env: vec![
                ("BENCH_JWT_SECRET".into(), JWT_SECRET.into()),
                ("BENCH_JWT_AUDIENCE".into(), JWT_AUDIENCE.into()),
                (
                    "BENCH_SPEC".into(),
                    cx.root
                        .join("apis")
                        .join("helloworld.yaml")
                        .display()
                        .to_string(),
                ),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ],
            cwd: Some(dir),
            port_as_arg: true,
            log: Some(cx.out_dir.join("logs").join("connexion.log")),
            token: cx.klue_token.to_string(),
        })
    }

    /// Spawns the server on `port` (not waiting for it to answer).
    fn spawn(&self, port: u16) -> Result<Child> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if self.port_as_arg {
            cmd.arg(port.to_string());
        } else {
            cmd.env("PORT", port.to_string());
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::null());
        match &self.log {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let file = File::options().create(true).append(true).open(path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.spawn()
            .with_context(|| format!("starting {} ({})", self.kind.name(), self.program.display()))
    }

    /// Starts the server and waits for the first 200 on `/ping`; returns it with the time that took.
    pub fn start(&self, timeout: Duration) -> Result<(Server, Duration)> {
        let port = http::free_port().context("finding a free port")?;
        let started = Instant::now();
        let child = self.spawn(port)?;
        let mut server = Server {
            kind: self.kind,
            child,
            port,
            log: self.log.clone(),
        };
        loop {
            if http::get_status(port, "/ping", Duration::from_millis(500)) == Some(200) {
                return Ok((server, started.elapsed()));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!(
                    "{} exited with {status} before answering /ping{}",
                    self.kind.name(),
                    server.log_hint()
                );
            }
            if started.elapsed() > timeout {
                let hint = server.log_hint();
                server.stop();
                bail!(
                    "{} did not answer /ping within {timeout:?}{hint}",
                    self.kind.name()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A running server; stopped (SIGTERM, then SIGKILL for the whole tree) when dropped.
pub struct Server {
    pub kind: Kind,
    child: Child,
    pub port: u16,
    log: Option<PathBuf>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_hint(&self) -> String {
        self.log
            .as_ref()
            .map(|p| format!(" (see {})", p.display()))
            .unwrap_or_default()
    }

    /// SIGTERM, up to 10 s for a graceful exit, then SIGKILL for whatever is left of the tree.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let tree = super::proc::tree(self.pid());
        signal("TERM", &[self.pid()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = tree
            .into_iter()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        if !left.is_empty() {
            signal("KILL", &left);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kill -SIG pid...` (the workspace forbids `unsafe`, so no libc call).
fn signal(sig: &str, pids: &[u32]) {
    let mut cmd = Command::new("kill");
    cmd.arg(format!("-{sig}"));
    cmd.args(pids.iter().map(u32::to_string));
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}
