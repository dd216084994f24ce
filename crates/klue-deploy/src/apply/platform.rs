//! Resolves a platform branch (and optional pinned version) to a platform ARN with
//! `ListPlatformVersions`: the newest Ready version of the branch, or the pinned one.

use super::{ApplyError, aws};
use crate::model::Platform;
use aws_sdk_elasticbeanstalk::types::PlatformFilter;

/// The platform ARN to create or update an environment with.
pub async fn resolve(
    eb: &aws_sdk_elasticbeanstalk::Client,
    platform: &Platform,
) -> Result<String, ApplyError> {
    let branch = platform.branch.platform_name();
    let filter = |kind: &str, value: &str| {
        PlatformFilter::builder()
            .r#type(kind)
            .operator("=")
            .values(value)
            .build()
    };
    let mut versions: Vec<(String, String)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = eb
            .list_platform_versions()
            .filters(filter("PlatformBranchName", branch))
            .filters(filter("PlatformStatus", "Ready"))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws("elasticbeanstalk:ListPlatformVersions"))?;
        for p in page.platform_summary_list() {
            if let (Some(arn), Some(version)) = (p.platform_arn(), p.platform_version()) {
                versions.push((version.to_string(), arn.to_string()));
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    let chosen = match &platform.version {
        Some(pinned) => versions.into_iter().find(|(v, _)| v == pinned),
        None => versions
            .into_iter()
            .max_by(|a, b| version_key(&a.0).cmp(&version_key(&b.0))),
    };
    chosen.map(|(_, arn)| arn).ok_or_else(|| {
        ApplyError::Refused(format!(
            "no Ready platform version {} of \"{branch}\" in this region (ListPlatformVersions)",
            platform.version.as_deref().unwrap_or("(any)")
        ))
    })
}

/// `4.10.0` sorts after `4.9.3`.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_numerically() {
        assert!(super::version_key("4.10.0") > super::version_key("4.9.3"));
        assert!(super::version_key("4.3.1") > super::version_key("4.3.0"));
    }
}
