//! klue-testbed: serves `apis/testbed.yaml` through klue's dynamic handler interface, with
//! handlers that sleep, panic, fail, break the spec and echo what they received. The
//! runtime's HTTP tests (`tests/`) run this binary.

use klue::{ApiError, Handlers, Reply, Request};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;

fn echo(request: &Request) -> Value {
    json!({
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "cookies": request.cookies,
        "body": request.body,
        "subject": request.ctx.claims.as_ref().and_then(|c| c.subject().map(str::to_owned)),
    })
}

fn handlers() -> Handlers {
    Handlers::new()
        .with("slow", |request: Request| async move {
            let ms = request.query.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Reply::json(http::StatusCode::OK, json!({"slept_ms": ms})))
        })
        .with("panic", |_request: Request| async move {
            if std::env::var_os("KLUE_TESTBED_NEVER").is_none() {
                panic!("the testbed handler panicked on purpose");
            }
            Ok(Reply::empty(http::StatusCode::OK))
        })
        .with("fail", |_request: Request| async move {
            Err::<Reply, _>(ApiError::internal(anyhow::anyhow!(
                "the database is down (secret detail)"
            )))
        })
        .with("bad_response", |_request: Request| async move {
            Ok(Reply::json(
                http::StatusCode::OK,
                json!({"slept_ms": "not a number"}),
            ))
        })
        .with("undocumented_status", |_request: Request| async move {
            Ok(Reply::json(http::StatusCode::IM_A_TEAPOT, json!({})))
        })
        .with("custom_error", |_request: Request| async move {
            Err::<Reply, _>(
                ApiError::new(409, "THING_CONFLICT", "The thing already exists")
                    .with_user_message("Pick another name"),
            )
        })
        .with("echo", |request: Request| async move {
            Ok(Reply::json(http::StatusCode::OK, echo(&request)))
        })
        .with("secure", |request: Request| async move {
            Ok(Reply::json(http::StatusCode::OK, echo(&request)))
        })
        .with("secure_post", |request: Request| async move {
            Ok(Reply::json(http::StatusCode::OK, echo(&request)))
        })
}

#[tokio::main]
async fn main() -> ExitCode {
    let specs = vec![klue::spec::Source {
        path: "apis/testbed.yaml".into(),
        text: include_str!("../apis/testbed.yaml").to_owned(),
    }];
    klue::server::run_service(specs, |builder| builder.serve("testbed", handlers())).await
}
