//! What the acceptance suite runs against: the [`AcceptTarget`] trait that local processes,
//! deployments and images implement (`accept`, `podman`), and what they share: the JWT secret
//! and audience of a local run, free ports and a bare `/ping` probe.

use anyhow::{Context, Result};
use klue_accept::{Target, TestResult};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Something the suite runs against: started before, stopped after.
pub trait AcceptTarget {
    /// What is tested, for the report (e.g. `local service (pid 42) at http://127.0.0.1:4711`).
    fn describe(&self) -> String;
    /// Where the suite sends its requests and how it gets a token.
    fn target(&self) -> &Target;
    /// Stops the target. Checks of the stop itself (e.g. a clean exit on SIGTERM) come back as
    /// extra result rows; an error means it could not be stopped at all.
    fn stop(&mut self) -> Result<Vec<TestResult>>;
    /// The target's recent logs, shown when a check fails.
    fn logs(&self) -> Option<String> {
        None
    }
}

/// The JWT secret and audience a local service gets when the environment sets none.
pub const LOCAL_SECRET: &str = "klue-accept-local-secret-0123456789abcdef";
pub const LOCAL_AUDIENCE: &str = "klue-accept";

/// A free TCP port on 127.0.0.1 (bound and released; a tiny race is accepted).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether `GET /ping` on 127.0.0.1:`port` answers 200 (plain HTTP/1.1, no client needed).
pub fn ping(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(
            format!("GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    attempt().unwrap_or(false)
}
