//! Value normalization for comparing desired and observed option values.
//!
//! Each rule exists because EB (or a console user) writes an equivalent value in another form;
//! comparing raw strings would make a plan that always shows changes.

use crate::options::{ENV_SECRETS, ENV_VARS, ENVIRONMENT, LAUNCH};

/// Options whose value is a comma list in which order has no meaning (sorted before comparing).
const UNORDERED_LISTS: &[(&str, &str)] = &[
    (LAUNCH, "SecurityGroups"),
    ("aws:elbv2:listener:443", "SSLCertificateArns"),
    ("aws:ec2:vpc", "Subnets"),
    ("aws:ec2:vpc", "ELBSubnets"),
    ("aws:elbv2:loadbalancer", "SecurityGroups"),
];

/// Options whose value is a comma list in which order matters (trimmed only):
/// the first instance type is the on-demand type.
const ORDERED_LISTS: &[(&str, &str)] = &[("aws:ec2:instances", "InstanceTypes")];

/// Options that name an IAM role or instance profile: the ARN and the bare name are equal.
const IAM_NAMES: &[(&str, &str)] = &[(ENVIRONMENT, "ServiceRole"), (LAUNCH, "IamInstanceProfile")];

/// The last path segment of an IAM ARN (`arn:aws:iam::1:role/service-role/x` -> `x`).
pub fn iam_name(value: &str) -> &str {
    if value.starts_with("arn:") {
        value.rsplit('/').next().unwrap_or(value)
    } else {
        value
    }
}

/// The secret name of a Secrets Manager ARN (the ARN ends with `-` and 6 random characters);
/// any other value is returned trimmed.
pub fn secret_name(value: &str) -> &str {
    let value = value.trim();
    let Some(rest) = value.strip_prefix("arn:") else {
        return value;
    };
    let mut parts = rest.splitn(6, ':');
    let (partition, service) = (parts.next(), parts.next());
    let (_region, _account, kind, name) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (partition, service, kind, name) {
        (Some(_), Some("secretsmanager"), Some("secret"), Some(name)) => {
            match name.rsplit_once('-') {
                Some((base, suffix))
                    if suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    base
                }
                _ => name,
            }
        }
        _ => value,
    }
}

fn scalar(value: &str) -> String {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        return v.to_ascii_lowercase();
    }
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        && let Ok(n) = v.parse::<f64>()
        && n.is_finite()
    {
        return if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else {
            format!("{n}")
        };
    }
    v.to_string()
}

/// The canonical form of an option value, for comparison only (never sent to AWS).
pub fn normalize(namespace: &str, option: &str, value: &str) -> String {
    let key = (namespace, option);
    if namespace == ENV_VARS {
        // The application sees these bytes: compared exactly.
        return value.to_string();
    }
    if namespace == ENV_SECRETS {
        return secret_name(value).to_string();
    }
    if IAM_NAMES.contains(&key) {
        return iam_name(value.trim()).to_string();
    }
    if ORDERED_LISTS.contains(&key) || UNORDERED_LISTS.contains(&key) {
        let mut items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            // Security groups EB creates and attaches itself are not the config's business.
            .filter(|s| {
                !(option == "SecurityGroups" && s.to_ascii_lowercase().starts_with("awseb-"))
            })
            .collect();
        if UNORDERED_LISTS.contains(&key) {
            items.sort_unstable();
            items.dedup();
        }
        return items.join(",");
    }
    scalar(value)
}

/// Whether two values of one option are the same after normalization (a missing value equals
/// an empty one).
pub fn same(namespace: &str, option: &str, a: Option<&str>, b: Option<&str>) -> bool {
    let n = |v: Option<&str>| normalize(namespace, option, v.unwrap_or(""));
    n(a) == n(b)
}
