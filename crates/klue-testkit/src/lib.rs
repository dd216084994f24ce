//! klue-testkit: test support for klue services. [`Server`] starts a real service binary on a
//! free loopback port (with a test JWT secret), waits until it listens, captures its output,
//! and kills it on drop; [`doubles`] starts moto and a registry. Not for production code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod doubles;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The JWT secret and audience the test servers are started with (unless a test overrides them).
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const AUDIENCE: &str = "klue-test-audience";

/// A running service process; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub base: String,
    /// Everything the process wrote to stdout and stderr so far.
    pub output: Arc<Mutex<String>>,
}

/// The workspace root: the nearest folder with the `Cargo.lock`, above the package cargo runs
/// the test of (`CARGO_MANIFEST_DIR` at run time). Not baked in at compile time: a target
/// directory shared between checkouts would point the tests at another checkout.
pub fn workspace_root() -> std::path::PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(std::path::Path::to_path_buf)
        .unwrap_or(package)
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `binary` with the test secret and audience and extra environment variables
    /// (`("NAME", None)` removes one), and waits until it listens.
    pub fn start_binary(binary: &str, env: &[(&str, Option<&str>)]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .env("KLUE_JWT_SECRET", SECRET)
            .env("KLUE_JWT_AUDIENCE", AUDIENCE)
            .env_remove("KLUE_JWT_ISSUER")
            .env_remove("KLUE_JWT_JWKS")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        let mut child = cmd.spawn().expect("start the service binary");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let server = Server {
            child: Some(child),
            port,
            base: format!("http://127.0.0.1:{port}"),
            output,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "service did not listen within 20 s; output:\n{}",
            self.output()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Takes the child process (the caller then owns stopping it).
    pub fn take_child(&mut self) -> Child {
        self.child.take().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking HTTP client with no retries and no redirects.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
