//! `cargo xtask token`: prints a JWT signed with the configured secret (`KLUE_JWT_SECRET`,
//! `KLUE_JWT_AUDIENCE`, optional `KLUE_JWT_ISSUER`), in klue-microservice's token format, for
//! tests and curl. Only the token goes to stdout.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The `sub` claim.
    #[arg(long, default_value = "test-jwt-token")]
    sub: String,
    /// Lifetime: `90s`, `30m`, `1h`, `2d`, or plain seconds.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// An extra claim, `key=value`; the value is JSON when it parses as JSON, else a string.
    /// Repeatable.
    #[arg(long = "claim", value_parser = parse_claim)]
    claims: Vec<(String, Value)>,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 1h or 3600"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{text}': use s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

fn parse_claim(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not key=value"))?;
    if key.is_empty() {
        return Err(format!("'{text}' has an empty claim name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let secret = std::env::var(klue::auth::ENV_SECRET)
        .with_context(|| format!("{} is not set", klue::auth::ENV_SECRET))?;
    if secret.is_empty() {
        bail!("{} is empty", klue::auth::ENV_SECRET);
    }
    let audience = std::env::var(klue::auth::ENV_AUDIENCE)
        .with_context(|| format!("{} is not set", klue::auth::ENV_AUDIENCE))?;
    let issuer = std::env::var(klue::auth::ENV_ISSUER)
        .ok()
        .filter(|i| !i.is_empty());
    let extra: Map<String, Value> = args.claims.into_iter().collect();
    let token = klue::auth::mint_token(
        secret.as_bytes(),
        &audience,
        issuer.as_deref(),
        &args.sub,
        args.ttl,
        extra,
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
    }

    #[test]
    fn claims_parse_as_json_or_string() {
        assert_eq!(
            parse_claim("admin=true"),
            Ok(("admin".into(), Value::Bool(true)))
        );
        assert_eq!(
            parse_claim("team=core"),
            Ok(("team".into(), Value::String("core".into())))
        );
        assert!(parse_claim("=x").is_err());
        assert!(parse_claim("novalue").is_err());
    }
}
