//! Starts the real `service` binary for HTTP tests (a thin wrapper over klue-testkit).
#![allow(dead_code, unused_imports)]

pub use klue_testkit::{AUDIENCE, SECRET, client, free_port};

/// The running service; derefs to [`klue_testkit::Server`] (`url`, `output`, `base`, ...).
pub struct Server(pub klue_testkit::Server);

impl Server {
    /// Starts the service with the test secret and audience.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// Starts the service with extra environment variables (`("NAME", None)` removes one).
    pub fn start_with_env(env: &[(&str, Option<&str>)]) -> Server {
        Server(klue_testkit::Server::start_binary(
            env!("CARGO_BIN_EXE_service"),
            env,
        ))
    }
}

impl std::ops::Deref for Server {
    type Target = klue_testkit::Server;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
