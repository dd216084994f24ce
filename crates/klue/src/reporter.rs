//! The error-reporter hook: called for every 5xx answer, with the error id, the request line
//! and the cause. Implement [`ErrorReporter`] to post to Slack, Sentry or e-mail; the default
//! ([`LogReporter`]) logs.

/// What is known about a 5xx answer.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub error_id: String,
    pub request_id: String,
    pub status: u16,
    pub code: String,
    /// `METHOD /path?query`.
    pub request_line: String,
    pub operation_id: Option<String>,
    pub description: String,
    /// The internal cause (error chain, or panic message and backtrace); never sent to clients.
    pub cause: Option<String>,
}

/// Receives every 5xx. Must not block: spawn work that talks to the network.
pub trait ErrorReporter: Send + Sync + 'static {
    fn report(&self, report: &ErrorReport);
}

/// The default reporter: one ERROR log event per 5xx, with its error id and cause.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogReporter;

impl ErrorReporter for LogReporter {
    fn report(&self, report: &ErrorReport) {
        tracing::error!(
            error_id = %report.error_id,
            request_id = %report.request_id,
            status = report.status,
            code = %report.code,
            operation = report.operation_id.as_deref().unwrap_or("-"),
            request = %report.request_line,
            cause = report.cause.as_deref().unwrap_or("-"),
            "{}", report.description
        );
    }
}
