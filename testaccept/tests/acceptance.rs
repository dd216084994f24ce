//! The acceptance suite as a cargo test target, against the service the environment names:
//!
//! ```sh
//! KLUE_BASE_URL=http://127.0.0.1:8080 cargo test -p testaccept --test acceptance [-- NAME...]
//! ```
//!
//! `KLUE_JWT_TOKEN`, or `KLUE_JWT_SECRET` and `KLUE_JWT_AUDIENCE`, give the token;
//! `KLUE_NO_SSL_CHECK=1` accepts a self-signed certificate. Arguments select checks whose name
//! contains one of them. `cargo xtask accept` runs the same suite and starts the service for you.

fn main() -> std::process::ExitCode {
    klue_accept::test_main(testaccept::suite())
}
