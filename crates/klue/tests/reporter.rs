//! The error-reporter hook sees every 5xx with its error id, request line and cause
//! (in-process: the router is driven with `tower::ServiceExt::oneshot`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue::reporter::{ErrorReport, ErrorReporter};
use klue::{ApiError, Handlers, Reply, Request, Service};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: reporter test, version: '1'}
paths:
  /boom:
    get:
      operationId: boom
      responses:
        '200': {description: never}
  /nope:
    get:
      operationId: nope
      responses:
        '200': {description: never}
        '404': {description: not found}
"#;

#[derive(Default)]
struct Collect(Mutex<Vec<ErrorReport>>);

impl ErrorReporter for Collect {
    fn report(&self, report: &ErrorReport) {
        self.0.lock().unwrap().push(report.clone());
    }
}

#[tokio::test]
async fn every_5xx_reaches_the_reporter_and_4xx_do_not() {
    let apis = klue::spec::load_sources(&[klue::spec::Source {
        path: "t.yaml".into(),
        text: SPEC.into(),
    }])
    .unwrap();
    let reporter = Arc::new(Collect::default());
    let handlers = Handlers::new()
        .with("boom", |_: Request| async {
            Err::<Reply, _>(ApiError::internal(anyhow::anyhow!("disk full")))
        })
        .with("nope", |_: Request| async {
            Err::<Reply, _>(ApiError::new(404, "NOPE", "no"))
        });
    let service = Service::builder(apis)
        .serve("t", handlers)
        .error_reporter(reporter.clone())
        .build()
        .unwrap();

    let request = http::Request::get("/boom")
        .header("host", "t.example")
        .header("x-request-id", "r-1")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = service.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();

    let request = http::Request::get("/nope")
        .header("host", "t.example")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        service.router().oneshot(request).await.unwrap().status(),
        404
    );

    let reports = reporter.0.lock().unwrap();
    assert_eq!(reports.len(), 1, "only the 5xx is reported");
    let report = &reports[0];
    assert_eq!(report.error_id, body["error_id"].as_str().unwrap());
    assert_eq!(report.request_id, "r-1");
    assert_eq!(report.request_line, "GET /boom");
    assert_eq!(report.operation_id.as_deref(), Some("boom"));
    assert_eq!(report.code, "UNHANDLED_SERVER_ERROR");
    assert!(report.cause.as_deref().unwrap().contains("disk full"));
    assert!(!body.to_string().contains("disk full"));
}
