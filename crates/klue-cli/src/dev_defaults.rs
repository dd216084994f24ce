//! The development defaults cargo gives every process it starts (`[env]` in
//! `.cargo/config.toml`), so that the verbs can refuse to ship one.
//!
//! `cargo xtask` is `cargo run`, so a verb sees those values as if the user had exported them:
//! a deploy from a shell where `KLUE_JWT_SECRET` is not set would read the public development
//! secret and upload it. Values are compared with the defaults cargo would use (every
//! `.cargo/config.toml` cargo reads for this workspace: the workspace's, its parents', and
//! `$CARGO_HOME`'s), whatever their variable, so a default a future config adds is covered too.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// The development defaults in force for this workspace.
#[derive(Debug, Default)]
pub struct DevDefaults {
    /// (variable, value, the config file that sets it).
    entries: Vec<(String, String, PathBuf)>,
}

/// Reads the `[env]` tables of every cargo config this workspace sees.
pub fn load() -> DevDefaults {
    let mut files: Vec<PathBuf> = crate::workspace::root()
        .ancestors()
        .flat_map(|dir| [dir.join(".cargo/config.toml"), dir.join(".cargo/config")])
        .collect();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        files.push(Path::new(&home).join("config.toml"));
    }
    let mut defaults = DevDefaults::default();
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            defaults.add(&text, &file);
        }
    }
    defaults
}

impl DevDefaults {
    /// Adds the `[env]` entries of one config file's text.
    pub fn add(&mut self, text: &str, file: &Path) {
        let Ok(config) = text.parse::<toml::Table>() else {
            return;
        };
        let Some(env) = config.get("env").and_then(toml::Value::as_table) else {
            return;
        };
        for (name, entry) in env {
            let value = match entry {
                toml::Value::String(value) => Some(value.as_str()),
                toml::Value::Table(table) => table.get("value").and_then(toml::Value::as_str),
                _ => None,
            };
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                self.entries
                    .push((name.clone(), value.to_string(), file.to_path_buf()));
            }
        }
    }

    /// Whether `value` is one of the development defaults.
    pub fn is_default(&self, value: &str) -> bool {
        self.source_of(value).is_some()
    }

    /// The config entry whose value `value` is, if any.
    fn source_of(&self, value: &str) -> Option<&(String, String, PathBuf)> {
        self.entries.iter().find(|(_, v, _)| v == value)
    }

    /// Refuses when the value any of `secrets` has in this process is a development default
    /// (values are never printed: the message names the variable and where the default is set).
    pub fn refuse_secrets(&self, secrets: &[String]) -> Result<()> {
        self.refuse_in(secrets, |name| std::env::var(name).ok())
    }

    fn refuse_in(&self, secrets: &[String], lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let offending: Vec<(&String, &(String, String, PathBuf))> = secrets
            .iter()
            .filter_map(|name| Some((name, self.source_of(&lookup(name)?)?)))
            .collect();
        let Some((first, _)) = offending.first() else {
            return Ok(());
        };
        let lines: Vec<String> = offending
            .iter()
            .map(|(name, (default_name, _, file))| {
                format!(
                    "  {name} holds the development default of {default_name} from {}",
                    file.display()
                )
            })
            .collect();
        bail!(
            "refusing to deploy a development default as a secret:\n{}\ncargo gives that value \
             to every process it starts, so it is public. Export the real value in this shell \
             (e.g. `export {first}=\"$(your-secret-store get ...)\"`; never on a command line \
             that is logged) and deploy again. Nothing was built or changed.",
            lines.join("\n")
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[alias]
xtask = "run --package xtask --"

[env]
KLUE_JWT_SECRET = { value = "a-public-dev-secret-value-0123456789", force = false }
OTHER_DEV_TOKEN = "another-public-default"
EMPTY = ""
"#;

    fn defaults() -> DevDefaults {
        let mut d = DevDefaults::default();
        d.add(CONFIG, Path::new("/repo/.cargo/config.toml"));
        d
    }

    #[test]
    fn a_secret_holding_a_dev_default_is_refused_without_printing_it() {
        let secrets = vec!["KLUE_JWT_SECRET".to_string()];
        let error = defaults()
            .refuse_in(&secrets, |_| {
                Some("a-public-dev-secret-value-0123456789".into())
            })
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("KLUE_JWT_SECRET holds the development default"),
            "{error}"
        );
        assert!(error.contains(".cargo/config.toml"), "{error}");
        assert!(!error.contains("a-public-dev-secret-value"), "{error}");
    }

    #[test]
    fn any_default_counts_whatever_its_variable() {
        let secrets = vec!["API_TOKEN".to_string()];
        let error = defaults()
            .refuse_in(&secrets, |_| Some("another-public-default".into()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("API_TOKEN holds the development default of OTHER_DEV_TOKEN"));
    }

    #[test]
    fn real_values_and_unset_secrets_pass() {
        let secrets = vec!["KLUE_JWT_SECRET".to_string()];
        defaults()
            .refuse_in(&secrets, |_| Some("the-real-production-secret".into()))
            .unwrap();
        defaults().refuse_in(&secrets, |_| None).unwrap();
        defaults()
            .refuse_in(&secrets, |_| Some(String::new()))
            .unwrap();
    }

    #[test]
    fn this_workspace_config_is_read() {
        let d = load();
        assert!(
            d.entries
                .iter()
                .any(|(name, _, _)| name == "KLUE_JWT_SECRET"),
            "{d:?}"
        );
    }
}
