//! What exists in AWS, as read by [`crate::observe`] (plain data: tests build it by hand).

use crate::options::OptionKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The live state of one application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The EB application, if it exists.
    pub application: Option<ObservedApplication>,
    /// Live (not terminated) environments, by EB environment name.
    pub environments: BTreeMap<String, ObservedEnvironment>,
    /// Secrets Manager secrets, by secret name (`<application>/<env>/<NAME>`).
    pub secrets: BTreeMap<String, ObservedSecret>,
}

/// An EB application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedApplication {
    /// The name.
    pub name: String,
    /// Application version labels, newest first.
    pub versions: Vec<String>,
}

/// An EB environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedEnvironment {
    /// EB environment name.
    pub eb_name: String,
    /// `e-...`.
    pub environment_id: String,
    /// `Launching`, `Updating`, `Ready`, `Terminating`, `Terminated`.
    pub status: String,
    /// `Green`, `Yellow`, `Red`, `Grey`.
    pub health: Option<String>,
    /// `<prefix>.<region>.elasticbeanstalk.com`.
    pub cname: Option<String>,
    /// `WebServer` or `Worker`.
    pub tier: Option<String>,
    /// The platform ARN.
    pub platform_arn: Option<String>,
    /// The solution stack name.
    pub solution_stack: Option<String>,
    /// The deployed version label.
    pub version_label: Option<String>,
    /// Every option setting DescribeConfigurationSettings returned (defaults included).
    pub options: BTreeMap<OptionKey, String>,
    /// Tags, when they were read.
    pub tags: Option<BTreeMap<String, String>>,
    /// The Auto Scaling group's actual size settings, when they were read.
    pub asg: Option<AsgSize>,
}

impl ObservedEnvironment {
    /// The CNAME prefix (the first label of the CNAME).
    pub fn cname_prefix(&self) -> Option<&str> {
        self.cname
            .as_deref()
            .and_then(|c| c.split('.').next())
            .filter(|p| !p.is_empty())
    }

    /// The platform (name, version) from the platform ARN or the solution stack name.
    pub fn platform(&self) -> Option<(String, String)> {
        if let Some(arn) = &self.platform_arn
            && let Some((_, path)) = arn.split_once(":platform/")
            && let Some((name, version)) = path.rsplit_once('/')
        {
            return Some((name.to_string(), version.to_string()));
        }
        // "64bit Amazon Linux 2023 v4.3.0 running Docker"
        let stack = self.solution_stack.as_deref()?;
        let (os, rest) = stack.split_once(" v")?;
        let (version, runtime) = rest.split_once(" running ")?;
        Some((format!("{runtime} running on {os}"), version.to_string()))
    }
}

/// A Secrets Manager secret (metadata only: values are never read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedSecret {
    /// The ARN (what the environment references).
    pub arn: String,
    /// The `klue:fingerprint` tag written when klue last set the value.
    pub fingerprint: Option<String>,
    /// When the secret is scheduled for deletion (`DescribeSecret`'s `DeletedDate`, RFC 3339):
    /// it still exists, a `CreateSecret` of its name fails, and `RestoreSecret` brings it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for_deletion: Option<String>,
}

/// Auto Scaling group size settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsgSize {
    /// The group name.
    pub name: String,
    /// MinSize.
    pub min: i64,
    /// MaxSize.
    pub max: i64,
}
