//! Waiting on an environment: polls `DescribeEnvironments` and streams `DescribeEvents` since
//! the operation started. "Ready" is not success: an ERROR event, a revert, an update that
//! completed "with errors", or a final version label other than the requested one fail.

use super::{ApplyError, Progress, aws};
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentDescription;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// What an event says about the operation being waited on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Progress.
    Info,
    /// The operation failed (the reason is the event's message).
    Failure(String),
}

/// Classifies one event. Pure, so the rules are unit-tested.
pub fn classify(severity: &str, message: &str) -> Verdict {
    let lower = message.to_ascii_lowercase();
    let failed = matches!(severity, "ERROR" | "FATAL")
        || lower.contains("reverted to the previous")
        || lower.contains("rolled back")
        || lower.contains("complete, but with errors")
        || lower.contains("completed successfully, but with errors")
        || lower.contains("aborted");
    if failed {
        Verdict::Failure(message.to_string())
    } else {
        Verdict::Info
    }
}

/// What the wait is for.
#[derive(Debug, Clone)]
pub struct WaitFor<'a> {
    /// EB environment name.
    pub environment: &'a str,
    /// The operation's start (events before it are ignored).
    pub since: DateTime,
    /// The version label the environment must end with.
    pub version_label: Option<&'a str>,
    /// Wait for `Terminated` instead of `Ready`.
    pub terminated: bool,
    /// Also require health Green.
    pub healthy: bool,
    /// The operation creates the environment (there is no previous configuration to keep).
    pub creating: bool,
    /// Give up after this long.
    pub timeout: Duration,
    /// The logical environment name, for the recovery hints.
    pub logical: &'a str,
}

impl<'a> WaitFor<'a> {
    /// Wait for `environment` (of the logical environment `logical`) to be Ready, looking at
    /// events from `since`, for at most `timeout`.
    pub fn new(
        environment: &'a str,
        logical: &'a str,
        since: DateTime,
        timeout: Duration,
    ) -> WaitFor<'a> {
        WaitFor {
            environment,
            since,
            version_label: None,
            terminated: false,
            healthy: false,
            creating: false,
            timeout,
            logical,
        }
    }

    /// It must end running this version.
    pub fn version(mut self, label: &'a str) -> Self {
        self.version_label = Some(label);
        self
    }

    /// Wait for `Terminated` instead.
    pub fn terminated(self) -> Self {
        self.terminated_if(true)
    }

    /// Wait for `Terminated` when `yes`.
    pub fn terminated_if(mut self, yes: bool) -> Self {
        self.terminated = yes;
        self
    }

    /// Also require health Green.
    pub fn healthy(mut self) -> Self {
        self.healthy = true;
        self
    }

    /// The operation creates the environment.
    pub fn creating(mut self) -> Self {
        self.creating = true;
        self
    }

    /// What state a failed operation left the environment in, and what to run next.
    fn recovery(&self, cause: &str) -> String {
        let (env, logical) = (self.environment, self.logical);
        if self.creating {
            format!(
                "{env} was created but {cause}; it has not passed the acceptance suite and klue \
                 sent it no traffic. See why with `cargo xtask status {logical}`; once the cause \
                 is fixed, `cargo xtask deploy {logical}` redeploys it (or `cargo xtask destroy \
                 {logical}` removes it)."
            )
        } else {
            format!(
                "{env} {cause}; EB keeps the configuration it reports. See the events with \
                 `cargo xtask status {logical}`, then run `cargo xtask deploy {logical}` again \
                 (it redeploys an unhealthy environment) or `cargo xtask rollback {logical}`."
            )
        }
    }
}

/// Polling interval.
pub(crate) fn poll_interval() -> Duration {
    std::env::var("KLUE_DEPLOY_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5))
}

/// Streams events and polls status until the environment settles; fails as described in the
/// module docs.
pub async fn wait(
    eb: &aws_sdk_elasticbeanstalk::Client,
    what: &WaitFor<'_>,
    progress: &dyn Progress,
) -> Result<EnvironmentDescription, ApplyError> {
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    let mut failure: Option<String> = None;
    let mut interrupted = false;
    // Listening from here on, not only during the pauses between polls: tokio's handler
    // replaces the default action of SIGINT, and a `ctrl_c()` made for each pause missed a
    // Ctrl-C that came while a request was in flight, which left the deploy running.
    // Without a listener (the runtime refused one), Ctrl-C keeps its default action.
    let mut interrupts =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    loop {
        for (date, severity, message) in new_events(eb, what, &mut seen).await? {
            progress.event(&date, &severity, &message);
            if failure.is_none()
                && let Verdict::Failure(reason) = classify(&severity, &message)
            {
                failure = Some(reason);
            }
        }
        let env = describe(eb, what.environment, what.terminated).await?;
        let status = env
            .as_ref()
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Terminated".into());
        let health = env
            .as_ref()
            .and_then(|e| e.health())
            .map(|h| h.as_str().to_string())
            .unwrap_or_default();
        progress.status(what.environment, &status, &health);
        if what.terminated {
            if status == "Terminated" {
                progress.done();
                return env.ok_or_else(|| gone(what));
            }
        } else if status == "Ready" {
            let env = env.ok_or_else(|| gone(what))?;
            if let Some(reason) = failure {
                progress.done();
                let state = format!(
                    "is Ready, health {}, running {}",
                    if health.is_empty() {
                        "unknown"
                    } else {
                        &health
                    },
                    env.version_label().unwrap_or("no version")
                );
                return Err(ApplyError::Failed {
                    environment: what.logical.to_string(),
                    reason: format!("{}: {reason}", what.environment),
                    recovery: what.recovery(&state),
                });
            }
            let running = env.version_label().unwrap_or_default();
            if let Some(wanted) = what.version_label
                && running != wanted
            {
                progress.done();
                return Err(ApplyError::Failed {
                    environment: what.logical.to_string(),
                    reason: format!(
                        "{} is Ready but runs version {running:?}, not {wanted:?}",
                        what.environment
                    ),
                    recovery: what.recovery(&format!("runs {running:?}")),
                });
            }
            if !what.healthy || health == "Green" {
                progress.done();
                return Ok(env);
            }
            if health == "Red" {
                progress.done();
                return Err(ApplyError::Failed {
                    environment: what.logical.to_string(),
                    reason: format!("{} is Ready but its health is Red", what.environment),
                    recovery: what.recovery(&format!(
                        "is Ready with health Red, running {}",
                        env.version_label().unwrap_or("no version")
                    )),
                });
            }
        } else if status == "Terminated" || status == "Terminating" {
            progress.done();
            return Err(ApplyError::Failed {
                environment: what.logical.to_string(),
                reason: format!(
                    "{} is {status}{}",
                    what.environment,
                    failure.map(|f| format!(": {f}")).unwrap_or_default()
                ),
                recovery: format!("Run `cargo xtask deploy {}` again.", what.logical),
            });
        }
        if started.elapsed() >= what.timeout {
            progress.done();
            return Err(ApplyError::Timeout {
                environment: what.environment.to_string(),
                logical: what.logical.to_string(),
                status,
                waited: what.timeout,
            });
        }
        let sleep = tokio::time::sleep(poll_interval());
        if interrupted {
            sleep.await;
            continue;
        }
        tokio::select! {
            () = sleep => {}
            Some(_) = async {
                match interrupts.as_mut() {
                    Some(interrupts) => interrupts.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                interrupted = true;
                progress.done();
                if status == "Updating" && progress.confirm(&format!(
                    "Interrupted. Abort the update of {} (AbortEnvironmentUpdate)?", what.environment
                )) {
                    eb.abort_environment_update()
                        .environment_name(what.environment)
                        .send()
                        .await
                        .map_err(aws("elasticbeanstalk:AbortEnvironmentUpdate"))?;
                    progress.line(&format!("abort requested for {}; waiting for it to settle", what.environment));
                    failure.get_or_insert_with(|| "the update was aborted at your request".into());
                } else {
                    return Err(ApplyError::Interrupted {
                        environment: what.environment.to_string(),
                        logical: what.logical.to_string(),
                    });
                }
            }
        }
    }
}

fn gone(what: &WaitFor<'_>) -> ApplyError {
    ApplyError::Failed {
        environment: what.logical.to_string(),
        reason: format!("{} disappeared while waiting", what.environment),
        recovery: format!("Run `cargo xtask deploy {}` again.", what.logical),
    }
}

/// The environment by name (the newest, when terminated ones are included).
pub async fn describe(
    eb: &aws_sdk_elasticbeanstalk::Client,
    name: &str,
    include_deleted: bool,
) -> Result<Option<EnvironmentDescription>, ApplyError> {
    let out = eb
        .describe_environments()
        .environment_names(name)
        .include_deleted(include_deleted)
        .send()
        .await
        .map_err(aws("elasticbeanstalk:DescribeEnvironments"))?;
    let mut envs: Vec<EnvironmentDescription> = out.environments().to_vec();
    envs.sort_by(|a, b| b.date_updated().cmp(&a.date_updated()));
    Ok(envs.into_iter().next())
}

/// Events for the environment since the start, oldest first, that were not shown yet.
async fn new_events(
    eb: &aws_sdk_elasticbeanstalk::Client,
    what: &WaitFor<'_>,
    seen: &mut BTreeSet<(i64, u32, String)>,
) -> Result<Vec<(String, String, String)>, ApplyError> {
    let out = eb
        .describe_events()
        .environment_name(what.environment)
        .start_time(what.since)
        .max_records(100)
        .send()
        .await
        .map_err(aws("elasticbeanstalk:DescribeEvents"))?;
    let mut fresh = Vec::new();
    for e in out.events() {
        let date = e.event_date().copied().unwrap_or(what.since);
        let message = e.message().unwrap_or_default().to_string();
        let key = (date.secs(), date.subsec_nanos(), message.clone());
        if seen.insert(key) {
            let severity = e
                .severity()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "INFO".into());
            fresh.push((date, severity, message));
        }
    }
    // DescribeEvents answers newest first.
    fresh.sort_by_key(|e| e.0);
    Ok(fresh
        .into_iter()
        .map(|(d, s, m)| {
            let when = d
                .fmt(aws_sdk_elasticbeanstalk::primitives::DateTimeFormat::DateTime)
                .unwrap_or_default();
            (when, s, m)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_reverts_and_partial_success_fail() {
        for (severity, message) in [
            ("ERROR", "Failed to deploy application."),
            ("FATAL", "Something broke."),
            (
                "INFO",
                "The environment was reverted to the previous configuration setting.",
            ),
            (
                "WARN",
                "Environment update is complete, but with errors. For more information, see troubleshooting documentation.",
            ),
        ] {
            assert!(
                matches!(classify(severity, message), Verdict::Failure(_)),
                "{severity} {message}"
            );
        }
    }

    #[test]
    fn progress_events_pass() {
        for message in [
            "Environment update is starting.",
            "Environment update completed successfully.",
            "Successfully launched environment: klue-hello-staging",
            "Completed swapping CNAMEs for environments",
        ] {
            assert_eq!(classify("INFO", message), Verdict::Info, "{message}");
        }
    }
}
