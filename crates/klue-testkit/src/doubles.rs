//! AWS test doubles as real processes on free loopback ports: moto (from the pinned
//! requirements, in a venv under the target dir) and the CNCF distribution registry
//! (`docker-registry`). A missing tool fails the test that needs it, naming the package to
//! install (`.ci/run` installs them all): a test that could not run never counts as passed.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn missing(why: &str) -> ! {
    panic!("this test cannot run: {why}")
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `moto_server` script of a venv at `venv` with `requirements` installed (reinstalled
/// when the requirements file changes).
pub fn moto_server(venv: &Path, requirements: &Path) -> PathBuf {
    // Tests of one binary run in parallel: one of them creates the venv, the others wait.
    // (Test binaries themselves run one after another.)
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let wanted = std::fs::read_to_string(requirements).unwrap();
    let server = venv.join("bin/moto_server");
    let stamp = venv.join(".klue-requirements");
    if server.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return server;
    }
    if !venv.join("bin/python").exists() {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(venv)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing("python3 -m venv failed: apt-get install python3-venv");
        }
    }
    let status = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pip install -r {} failed",
        requirements.display()
    );
    std::fs::write(&stamp, wanted).unwrap();
    server
}

/// A moto server on a free port.
pub struct Moto {
    _process: Process,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto from the pinned `xtask/image-test-requirements.txt`, in one venv under the
    /// target dir that every test shares.
    pub fn start_pinned() -> Moto {
        Moto::start(
            &crate::target_dir().join("moto-test-venv"),
            &crate::workspace_root().join("xtask/image-test-requirements.txt"),
        )
    }

    /// Starts `moto_server` (see [`moto_server`]).
    pub fn start(venv: &Path, requirements: &Path) -> Moto {
        let server = moto_server(venv, requirements);
        let port = free_port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let process = Process(child);
        wait_for_port(port, "moto_server");
        Moto {
            _process: process,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// A CNCF distribution registry (`docker-registry`) with its storage in a temp dir.
pub struct Registry {
    _process: Process,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
}

impl Registry {
    /// Starts `/usr/bin/docker-registry`.
    pub fn start() -> Registry {
        let binary = Path::new("/usr/bin/docker-registry");
        if !binary.exists() {
            missing("docker-registry is missing: apt-get install -y docker-registry");
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let process = Process(child);
        wait_for_port(port, "docker-registry");
        Registry {
            _process: process,
            _dir: dir,
            host: format!("127.0.0.1:{port}"),
        }
    }
}
