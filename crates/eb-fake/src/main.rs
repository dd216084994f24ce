//! `eb-fake [--port N] [--region R] [--delay-ms MS]`: serves the fake EB API on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut config = eb_fake::Config::default();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value.as_deref()) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--region", Some(v)) => {
                config.region = v.to_string();
                true
            }
            ("--delay-ms", Some(v)) => v
                .parse()
                .map(|ms| config.transition = Duration::from_millis(ms))
                .is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("usage: eb-fake [--port N] [--region R] [--delay-ms MS]");
            return std::process::ExitCode::from(2);
        }
    }
    match eb_fake::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), config).await {
        Ok((addr, _)) => {
            println!("eb-fake listening on http://{addr}");
            let _ = tokio::signal::ctrl_c().await;
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eb-fake: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
