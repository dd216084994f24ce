//! The process under test: a release build of a service binary started on a free loopback port
//! with a known JWT secret, its log in a file, its memory read from `/proc`, stopped with
//! SIGTERM (killed on drop). Plus a tiny blocking HTTP/1.1 client for setup requests.

use crate::util;
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The JWT secret and audience the service under test is started with.
pub const SECRET: &str = "reliability-secret-0123456789abcdef0123";
pub const AUDIENCE: &str = "klue-reliability";

/// Builds the release binaries of `packages` into the target dir and returns the directory
/// holding them.
pub fn build_release(packages: &[&str]) -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.current_dir(util::workspace_root())
        .args(["build", "--release", "--locked"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    util::run(&mut cmd)?;
    Ok(util::target_dir().join("release"))
}

/// A JWT for the service under test, valid for `ttl`.
pub fn token(ttl: Duration) -> Result<String> {
    klue::auth::mint_token(
        SECRET.as_bytes(),
        AUDIENCE,
        None,
        "reliability",
        ttl,
        serde_json::Map::new(),
    )
    .context("minting a token")
}

/// A running service process.
pub struct Service {
    child: Option<Child>,
    pub port: u16,
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Service {
    /// Starts `binary` on 127.0.0.1 with the test JWT settings and `env`, logging to `log`, and
    /// waits until `/ping` answers 200.
    pub fn start(binary: &Path, log: &Path, env: &[(&str, &str)]) -> Result<Service> {
        let port = free_port()?;
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(binary);
        cmd.args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .env("KLUE_JWT_SECRET", SECRET)
            .env("KLUE_JWT_AUDIENCE", AUDIENCE)
            .env_remove("KLUE_JWT_ISSUER")
            .env_remove("KLUE_JWT_JWKS")
            .env("KLUE_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut service = Service {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = service.request("GET", "/ping", &[], None) {
                return Ok(service);
            }
            if let Some(child) = service.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited with {status} at startup; see {}",
                    binary.display(),
                    log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer /ping within 30 s; see {}",
                    binary.display(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// One blocking HTTP/1.1 request (`Connection: close`): status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<(u16, String)> {
        http(self.port, method, path, headers, body)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit.
    pub fn terminate(mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the service is not running");
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("sending SIGTERM")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the service did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One blocking HTTP/1.1 request to 127.0.0.1:`port` with `Connection: close`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .context("no end of headers in the answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    Ok((status, payload))
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(rest.get(..size).unwrap_or(""));
        text = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
    out
}
