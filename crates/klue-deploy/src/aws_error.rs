//! AWS call failures as one line a person can act on: the service and operation, AWS's error
//! code and message, and what to do next (wait and retry, check the credentials or the IAM
//! policy, ...), instead of the SDK's nested debug output.

use aws_sdk_elasticbeanstalk::error::{ProvideErrorMetadata, SdkError};
use std::fmt;

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// `service:Operation`, e.g. `elasticbeanstalk:DescribeEnvironments`.
    pub operation: &'static str,
    /// AWS's error code (`Throttling`, `AccessDenied`, ...), when the service answered.
    pub code: Option<String>,
    /// AWS's message, or what went wrong before an answer (connection, credentials, timeout).
    pub message: String,
    /// What to do about it.
    pub hint: Option<&'static str>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: ", self.operation)?;
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = self.hint {
            write!(f, ". {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// How to get credentials, for the errors that mean there are none.
pub const CREDENTIALS_HINT: &str = "No AWS credentials were found: set AWS_PROFILE to a profile \
     from `aws configure` (or run `aws sso login --profile <name>` first), or export \
     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, assume a role by OIDC with \
     aws-actions/configure-aws-credentials";

const THROTTLED_HINT: &str = "AWS is rate-limiting these calls (the SDK already retried): wait a minute and run the command again";
const DENIED_HINT: &str = "The credentials in use lack a permission: compare the caller's policy \
     with the policies in iam/ (`aws sts get-caller-identity` shows who the caller is)";
const EXPIRED_HINT: &str = "The credentials are expired or invalid: refresh them (`aws sso login`, a new session token) and run again";
const UNREACHABLE_HINT: &str = "Check the network, the region and any AWS_ENDPOINT_URL* variables";

fn hint_for_code(code: &str) -> Option<&'static str> {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown" => Some(THROTTLED_HINT),
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "InsufficientPrivilegesException" => Some(DENIED_HINT),
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException" => Some(EXPIRED_HINT),
        _ => None,
    }
}

/// The innermost cause's text: the SDK wraps the useful sentence in several layers.
pub(crate) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Summarizes an SDK error of `operation`.
pub fn from_sdk<E, R>(operation: &'static str, error: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().map(str::to_string);
            let message = inner
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| root_cause(inner));
            let hint = code.as_deref().and_then(hint_for_code);
            AwsError {
                operation,
                code,
                message,
                hint,
            }
        }
        SdkError::TimeoutError(_) => AwsError {
            operation,
            code: None,
            message: "no answer in time".into(),
            hint: Some(UNREACHABLE_HINT),
        },
        SdkError::DispatchFailure(failure) => {
            let message = root_cause(error);
            let hint = if failure.is_user() || message.contains("credentials") {
                Some(CREDENTIALS_HINT)
            } else {
                Some(UNREACHABLE_HINT)
            };
            AwsError {
                operation,
                code: None,
                message: format!("the request was not sent: {message}"),
                hint,
            }
        }
        SdkError::ConstructionFailure(_) => {
            let message = root_cause(error);
            let hint = message.contains("credentials").then_some(CREDENTIALS_HINT);
            AwsError {
                operation,
                code: None,
                message: format!("the request could not be made: {message}"),
                hint,
            }
        }
        other => {
            let message = root_cause(other);
            let hint = other
                .code()
                .and_then(hint_for_code)
                .or(Some(UNREACHABLE_HINT));
            AwsError {
                operation,
                code: other.code().map(str::to_string),
                message,
                hint,
            }
        }
    }
}

/// [`from_sdk`] as a `map_err` argument.
pub fn err<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    move |error| from_sdk(operation, &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_get_the_matching_advice() {
        assert_eq!(hint_for_code("Throttling"), Some(THROTTLED_HINT));
        assert_eq!(hint_for_code("AccessDeniedException"), Some(DENIED_HINT));
        assert_eq!(hint_for_code("ExpiredToken"), Some(EXPIRED_HINT));
        assert_eq!(hint_for_code("InvalidParameterValue"), None);
    }

    #[test]
    fn the_line_names_operation_code_message_and_advice() {
        let error = AwsError {
            operation: "elasticbeanstalk:DescribeEnvironments",
            code: Some("Throttling".into()),
            message: "Rate exceeded".into(),
            hint: Some(THROTTLED_HINT),
        };
        let line = error.to_string();
        assert!(
            line.starts_with(
                "elasticbeanstalk:DescribeEnvironments failed: Throttling: Rate exceeded. AWS is rate-limiting"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
