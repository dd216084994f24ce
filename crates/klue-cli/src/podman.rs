//! Runs the service's image in podman (daemonless) for the acceptance suite: load an
//! oci-archive, start a container on a free loopback port with host networking, wait for
//! `/ping`, and stop and remove it when done (also on drop).
//!
//! Containers run with `--runtime runc` (crun rejects a hybrid cgroup layout, as sandboxed CI
//! hosts have), `--ulimit nofile=20000:20000 --ulimit nproc=32768:32768` (a sandbox may not
//! raise limits to podman's defaults) and `--network host`. `KLUE_PODMAN_RUNTIME` overrides the runtime. No `--init`: the
//! service is PID 1 and must exit on SIGTERM by itself. Not for: building images (`image/`).

use crate::target::{AcceptTarget, LOCAL_AUDIENCE, LOCAL_SECRET, free_port, ping};
use crate::{Project, image};
use anyhow::{Context, Result, bail};
use klue_accept::{Target, TestResult};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a container gets to answer `/ping`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A podman command with its global options (the runtime: `KLUE_PODMAN_RUNTIME`, else runc).
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    let runtime = std::env::var("KLUE_PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
    cmd.args(["--runtime", &runtime]);
    cmd
}

/// Fails with an install hint when podman is missing.
pub fn require() -> Result<()> {
    match Command::new("podman").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!("podman is not installed (on Debian: apt-get install -y podman runc)"),
    }
}

fn output(cmd: &mut Command) -> Result<Output> {
    let shown = crate::workspace::command_line(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// `podman load`s an oci-archive and returns the name podman gave it (from the archive's
/// `ref.name` annotation).
pub fn load(archive: &Path) -> Result<String> {
    require()?;
    let out = output(podman().arg("load").arg("--input").arg(archive))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.split_once("Loaded image").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_once(':').map(|(_, name)| name.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .with_context(|| format!("podman load printed no image name: {text}"))
}

/// A running container; stopped and removed on drop.
pub struct Container {
    name: String,
    port: u16,
    removed: bool,
}

/// Starts `image` with `env` on a free loopback port (host network, `PORT` and `KLUE_HOST`
/// set), waits until `/ping` answers 200, and returns the base URL and the container. The
/// variables of `env` reach the container by name only (`--env NAME`).
pub fn start(image: &str, env: &[(String, String)]) -> Result<(String, Container)> {
    require()?;
    let port = free_port()?;
    let name = format!("klue-accept-{}-{port}", std::process::id());
    let mut cmd = podman();
    cmd.args(["run", "--detach", "--name", &name])
        .args([
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
        ])
        .args(["--network", "host"])
        .args([
            "--env",
            &format!("PORT={port}"),
            "--env",
            "KLUE_HOST=127.0.0.1",
        ]);
    // By name: podman takes the value from its own environment, so values (secrets) never
    // stand on a command line, where any process can read them in /proc/<pid>/cmdline.
    for (key, value) in env {
        cmd.arg("--env").arg(key).env(key, value);
    }
    cmd.arg(image);
    output(&mut cmd)?;
    let container = Container {
        name,
        port,
        removed: false,
    };
    container.wait_ready()?;
    let base_url = format!("http://127.0.0.1:{port}");
    Ok((base_url, container))
}

impl Container {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's logs (stdout and stderr).
    pub fn logs(&self) -> String {
        match podman().args(["logs", &self.name]).output() {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(error) => format!("(no logs: {error})"),
        }
    }

    fn running(&self) -> bool {
        podman()
            .args(["inspect", "--format", "{{.State.Running}}", &self.name])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "true")
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(self.port) {
                return Ok(());
            }
            if !self.running() {
                bail!(
                    "container {} exited before answering /ping:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "container {} did not answer /ping in time:\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the container (SIGTERM, then SIGKILL after 10 s) and returns how long the stop
    /// took and the container's exit code; the container is removed afterwards.
    pub fn stop(mut self) -> Result<(Duration, i64)> {
        let started = Instant::now();
        output(podman().args(["stop", "--time", "10", &self.name]))?;
        let took = started.elapsed();
        let out =
            output(podman().args(["inspect", "--format", "{{.State.ExitCode}}", &self.name]))?;
        let code = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(-1);
        self.remove();
        Ok((took, code))
    }

    fn remove(&mut self) {
        if !self.removed {
            self.removed = true;
            let _ = podman()
                .args(["rm", "--force", "--time", "2", &self.name])
                .output();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

/// How long `podman stop` may take: the service is PID 1 and must exit on SIGTERM promptly.
pub const STOP_BUDGET: Duration = Duration::from_secs(2);

/// `cargo xtask accept --image [REF]`: the image running in podman as an acceptance target.
pub struct ImageTarget {
    container: Option<Container>,
    image: String,
    target: Target,
    logs: Option<String>,
}

impl ImageTarget {
    /// Starts the image named by `reference`: empty builds it (`cargo xtask image`) and loads
    /// the oci-archive; an existing file is loaded as an oci-archive; anything else is an
    /// image reference podman knows (or pulls). The JWT secret and audience are the
    /// environment's, else the ones `--local` uses.
    pub fn start(project: &Project, reference: &str) -> Result<ImageTarget> {
        require()?;
        let image = if reference.is_empty() {
            let built = image::build(project, &image::Args::default())?;
            eprintln!("built {} {}", built.reference, built.digest);
            load(&built.archive)?
        } else if Path::new(reference).is_file() {
            load(Path::new(reference))?
        } else {
            reference.to_owned()
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secret = env("KLUE_JWT_SECRET").unwrap_or_else(|| LOCAL_SECRET.to_string());
        let audience = env("KLUE_JWT_AUDIENCE").unwrap_or_else(|| LOCAL_AUDIENCE.to_string());
        let issuer = env("KLUE_JWT_ISSUER");
        let mut vars = vec![
            ("KLUE_JWT_SECRET".to_owned(), secret.clone()),
            ("KLUE_JWT_AUDIENCE".to_owned(), audience.clone()),
        ];
        if let Some(issuer) = &issuer {
            vars.push(("KLUE_JWT_ISSUER".to_owned(), issuer.clone()));
        }
        let (base_url, container) = start(&image, &vars)?;
        let mut target = Target::new(base_url).with_secret(&secret, &audience, issuer.as_deref());
        if let Some(token) = env("KLUE_JWT_TOKEN") {
            target.auth = klue_accept::Auth::Token(token);
        }
        Ok(ImageTarget {
            container: Some(container),
            image,
            target,
            logs: None,
        })
    }
}

impl AcceptTarget for ImageTarget {
    fn describe(&self) -> String {
        match &self.container {
            Some(c) => format!(
                "image {} (podman container {}) at {}",
                self.image,
                c.name(),
                self.target.base_url
            ),
            None => format!("image {} at {}", self.image, self.target.base_url),
        }
    }

    fn target(&self) -> &Target {
        &self.target
    }

    /// `podman stop` (no `--init`: the service is PID 1): passes when it returns within
    /// [`STOP_BUDGET`] and the service exited 0; the container is removed either way.
    fn stop(&mut self) -> Result<Vec<TestResult>> {
        let Some(container) = self.container.take() else {
            return Ok(Vec::new());
        };
        self.logs = Some(container.logs());
        let (took, code) = container.stop()?;
        let message = if code != 0 {
            format!("the service exited with code {code} after SIGTERM")
        } else if took >= STOP_BUDGET {
            format!("podman stop took {took:?} (budget {STOP_BUDGET:?}): PID 1 ignored SIGTERM?")
        } else {
            String::new()
        };
        Ok(vec![TestResult {
            name: "stops_on_sigterm".to_string(),
            passed: message.is_empty(),
            duration: took,
            message,
        }])
    }

    fn logs(&self) -> Option<String> {
        match &self.container {
            Some(container) => Some(container.logs()),
            None => self.logs.clone(),
        }
    }
}
