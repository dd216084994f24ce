//! The fake platform versions: a few versions of the branch
//! "Docker running on 64bit Amazon Linux 2023", the newest one `Recommended`.

use crate::ApiError;
use crate::xml::Xml;
use std::cmp::Ordering;
use std::collections::HashMap;

/// The platform (and platform branch) name.
pub const BRANCH: &str = "Docker running on 64bit Amazon Linux 2023";

/// Known versions, oldest first; the last one is the recommended one.
pub const VERSIONS: &[&str] = &["4.3.0", "4.4.0", "4.5.1"];

/// One platform version of [`BRANCH`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platform {
    pub version: &'static str,
}

impl Platform {
    /// `arn:aws:elasticbeanstalk:<region>::platform/<name>/<version>`.
    pub fn arn(&self, region: &str) -> String {
        format!(
            "arn:aws:elasticbeanstalk:{region}::platform/{BRANCH}/{}",
            self.version
        )
    }

    /// `64bit Amazon Linux 2023 v<version> running Docker`.
    pub fn solution_stack(&self) -> String {
        format!("64bit Amazon Linux 2023 v{} running Docker", self.version)
    }

    fn recommended(&self) -> bool {
        VERSIONS.last() == Some(&self.version)
    }

    fn by_version(version: &str) -> Option<Platform> {
        VERSIONS
            .iter()
            .find(|v| **v == version)
            .map(|v| Platform { version: v })
    }

    /// The value a `PlatformFilter` of this type compares against; `None` for an unknown type.
    fn attribute(&self, kind: &str) -> Option<Vec<String>> {
        Some(match kind {
            "PlatformName" | "PlatformBranchName" => vec![BRANCH.into()],
            "PlatformVersion" => vec![self.version.into()],
            "PlatformStatus" => vec!["Ready".into()],
            "PlatformOwner" => vec!["AWSElasticBeanstalk".into()],
            "PlatformLifecycleState" => {
                if self.recommended() {
                    vec!["recommended".into()]
                } else {
                    vec![]
                }
            }
            "SupportedTier" => TIERS.iter().map(|t| t.to_string()).collect(),
            "SupportedAddon" => ADDONS.iter().map(|t| t.to_string()).collect(),
            "OperatingSystemName" => vec!["Amazon Linux".into()],
            "ProgrammingLanguageName" => vec!["Docker".into()],
            _ => return None,
        })
    }
}

const TIERS: &[&str] = &["WebServer/Standard", "Worker/SQS/HTTP"];
const ADDONS: &[&str] = &["Log/S3", "Monitoring/Healthd", "WorkerDaemon/SQSD"];

/// The platform of a CreateEnvironment/UpdateEnvironment from its `PlatformArn` and/or
/// `SolutionStackName`; both, when given, must name the same version.
pub fn resolve(region: &str, arn: Option<&str>, stack: Option<&str>) -> Result<Platform, ApiError> {
    let from_arn = arn
        .map(|arn| {
            arn.strip_prefix(&format!(
                "arn:aws:elasticbeanstalk:{region}::platform/{BRANCH}/"
            ))
            .and_then(Platform::by_version)
            .ok_or_else(|| {
                ApiError::InvalidParameterValue(format!("No Platform named '{arn}' found."))
            })
        })
        .transpose()?;
    let from_stack = stack
        .map(|stack| {
            stack
                .strip_prefix("64bit Amazon Linux 2023 v")
                .and_then(|rest| rest.strip_suffix(" running Docker"))
                .and_then(Platform::by_version)
                .ok_or_else(|| {
                    ApiError::InvalidParameterValue(format!(
                        "No Solution Stack named '{stack}' found."
                    ))
                })
        })
        .transpose()?;
    match (from_arn, from_stack) {
        (Some(a), Some(s)) if a != s => Err(ApiError::InvalidParameterValue(
            "The PlatformArn and the SolutionStackName name different platform versions.".into(),
        )),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Err(ApiError::InvalidParameterValue(
            "No solution stack or platform specified.".into(),
        )),
    }
}

/// Numeric comparison of dotted versions ("4.10.0" > "4.9.1").
fn cmp_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}

fn matches(kind: &str, operator: &str, actual: &str, wanted: &str) -> Result<bool, ApiError> {
    let ord = if kind == "PlatformVersion" {
        cmp_versions(actual, wanted)
    } else {
        actual.cmp(wanted)
    };
    let ci = |s: &str| s.to_ascii_lowercase();
    Ok(match operator {
        "=" if kind == "PlatformLifecycleState" => ci(actual) == ci(wanted),
        "=" => actual == wanted,
        "!=" => actual != wanted,
        "contains" => actual.contains(wanted),
        "begins_with" => actual.starts_with(wanted),
        "ends_with" => actual.ends_with(wanted),
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        other => {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid filter operator '{other}'. Valid operators: =, !=, <, <=, >, >=, contains, begins_with, ends_with."
            )));
        }
    })
}

/// The platform versions matching every filter (`Filters.member.N.{Type,Operator,Values.member.M}`),
/// newest first.
pub fn list(filters: &[HashMap<String, String>]) -> Result<Vec<Platform>, ApiError> {
    let mut out = Vec::new();
    for version in VERSIONS.iter().rev() {
        let platform = Platform { version };
        let mut keep = true;
        for f in filters {
            let kind = f.get("Type").map(String::as_str).unwrap_or("");
            let operator = f.get("Operator").map(String::as_str).unwrap_or("=");
            let wanted = f.get("Values.member.1").ok_or_else(|| {
                ApiError::InvalidParameterValue(format!("A value is required for filter {kind}."))
            })?;
            let actual = platform.attribute(kind).ok_or_else(|| {
                ApiError::InvalidParameterValue(format!("Invalid filter type '{kind}'."))
            })?;
            // A multi-valued attribute (tiers, add-ons) matches when any value does; `!=` when none is equal.
            let hit = if operator == "!=" {
                !actual
                    .iter()
                    .map(|a| matches(kind, "=", a, wanted))
                    .collect::<Result<Vec<_>, _>>()?
                    .contains(&true)
            } else {
                actual
                    .iter()
                    .map(|a| matches(kind, operator, a, wanted))
                    .collect::<Result<Vec<_>, _>>()?
                    .contains(&true)
            };
            // Validate the operator even when the attribute has no value.
            matches(kind, operator, "", wanted)?;
            keep &= hit;
        }
        if keep {
            out.push(platform);
        }
    }
    Ok(out)
}

/// One `PlatformSummaryList` member.
pub fn write_summary(x: &mut Xml, p: &Platform, region: &str) {
    x.text("PlatformArn", &p.arn(region))
        .text("PlatformOwner", "AWSElasticBeanstalk")
        .text("PlatformStatus", "Ready")
        .text("PlatformCategory", "Docker")
        .text("OperatingSystemName", "Amazon Linux")
        .text("OperatingSystemVersion", "2023")
        .list("SupportedTierList", TIERS, |x, t| {
            x.0.push_str(&crate::xml::esc(t));
        })
        .list("SupportedAddonList", ADDONS, |x, t| {
            x.0.push_str(&crate::xml::esc(t));
        })
        .opt(
            "PlatformLifecycleState",
            p.recommended().then_some("Recommended"),
        )
        .text("PlatformVersion", p.version)
        .text("PlatformBranchName", BRANCH)
        .text("PlatformBranchLifecycleState", "Supported");
}
