//! `bench-baseline`: the practical ceiling for `cargo xtask bench`.
//!
//! It serves the helloworld endpoints of `apis/helloworld.yaml` (`GET /ping`,
//! `GET /v1/hello/{name}`, `POST /v1/items`, `GET /v1/items`, `GET /v1/items/{id}`) written by
//! hand on bare axum with serde: no spec, no validation, no auth, no logging, an in-memory store.
//! It is what klue would cost if the framework were free. It is not a service to deploy.
//!
//! Usage: `bench-baseline [--port PORT] [--host ADDR]` (also `PORT`, `KLUE_HOST`; defaults
//! 8080 and 127.0.0.1).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

/// `NewItem`: the body of `POST /v1/items`.
#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
    count: i64,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `Item`: a stored item.
#[derive(Debug, Clone, Serialize)]
struct Item {
    id: Uuid,
    name: String,
    count: i64,
    tags: Vec<String>,
}

/// `ItemList`: a page of items and the total.
#[derive(Debug, Serialize)]
struct ItemList {
    items: Vec<Item>,
    total: i64,
}

/// `Greeting`: the answer of `GET /v1/hello/{name}`.
#[derive(Debug, Serialize)]
struct Greeting {
    message: String,
}

/// Query of `GET /v1/items`.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Items in creation order, with an index by id (as the klue service keeps them).
#[derive(Debug, Default)]
struct Store {
    items: Vec<Item>,
    by_id: HashMap<Uuid, usize>,
}

type Shared = Arc<RwLock<Store>>;

async fn ping() -> Json<serde_json::Value> {
    Json(json!({}))
}

async fn hello(Path(name): Path<String>) -> Json<Greeting> {
    Json(Greeting {
        message: format!("hello {name}"),
    })
}

async fn create_item(State(store): State<Shared>, Json(body): Json<NewItem>) -> Response {
    let item = Item {
        id: Uuid::new_v4(),
        name: body.name,
        count: body.count,
        tags: body.tags.unwrap_or_default(),
    };
    {
        let mut store = store.write().unwrap_or_else(PoisonError::into_inner);
        let index = store.items.len();
        store.by_id.insert(item.id, index);
        store.items.push(item.clone());
    }
    (StatusCode::CREATED, Json(item)).into_response()
}

async fn list_items(State(store): State<Shared>, Query(page): Query<Page>) -> Json<ItemList> {
    let store = store.read().unwrap_or_else(PoisonError::into_inner);
    let items = store
        .items
        .iter()
        .skip(page.offset.unwrap_or(0))
        .take(page.limit.unwrap_or(20))
        .cloned()
        .collect();
    Json(ItemList {
        items,
        total: i64::try_from(store.items.len()).unwrap_or(i64::MAX),
    })
}

async fn get_item(State(store): State<Shared>, Path(id): Path<Uuid>) -> Response {
    let store = store.read().unwrap_or_else(PoisonError::into_inner);
    match store.by_id.get(&id).and_then(|&i| store.items.get(i)) {
        Some(item) => Json(item.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"status": 404, "error": "ITEM_NOT_FOUND"})),
        )
            .into_response(),
    }
}

/// The router: the same paths as the helloworld spec.
fn router() -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/v1/hello/{name}", get(hello))
        .route("/v1/items", get(list_items).post(create_item))
        .route("/v1/items/{id}", get(get_item))
        .with_state(Shared::default())
}

/// `--port`/`--host` from the command line, else `PORT`/`KLUE_HOST`, else defaults.
fn address() -> Result<SocketAddr, String> {
    let mut port = std::env::var("PORT").ok();
    let mut host = std::env::var("KLUE_HOST").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next(),
            "--host" => host = args.next(),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: bench-baseline [--port PORT] [--host ADDR]"
                ));
            }
        }
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => 8080,
    };
    let host = match host {
        Some(h) => h.parse::<IpAddr>().map_err(|_| format!("bad host {h:?}"))?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    Ok(SocketAddr::new(host, port))
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match address() {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("bench-baseline: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("bench-baseline: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    match axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-baseline: {error}");
            ExitCode::FAILURE
        }
    }
}
