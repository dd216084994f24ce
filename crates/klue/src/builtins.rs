//! What every klue service answers besides its own API: `/ping`, `/version`, `/auth/version`
//! (operations of klue's built-in spec, dispatched like any other), the served specs at
//! `/openapi/<api>.json|yaml`, and Swagger UI at `/docs` (assets inside the binary).

use crate::handler::{Handler, Reply, Request};
use crate::middleware::RequestId;
use axum::Extension;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use klue_spec::Api;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The answers of the built-in operations, computed once.
pub(crate) struct BuiltinState {
    version: Value,
}

impl BuiltinState {
    pub(crate) fn new(api: &Api, container_version: &str) -> Self {
        BuiltinState {
            version: json!({"name": api.name, "version": api.version, "container": container_version}),
        }
    }
}

/// The handler of a built-in operation, by operation id.
pub(crate) fn handler_for(
    operation_id: &str,
    state: Arc<BuiltinState>,
) -> Option<Arc<dyn Handler>> {
    match operation_id {
        "ping" => Some(Arc::new(|_: Request| async {
            Ok(Reply::serialized(
                StatusCode::OK,
                bytes::Bytes::from_static(b"{}"),
            ))
        })),
        "version" | "auth_version" => Some(Arc::new(move |_: Request| {
            let body = state.version.clone();
            async move { Ok(Reply::json(StatusCode::OK, body)) }
        })),
        _ => None,
    }
}

/// The served specs, rendered once at startup.
pub(crate) struct Documents {
    /// `<api>.json` / `<api>.yaml` -> (content type, bytes).
    files: BTreeMap<String, (&'static str, Vec<u8>)>,
    docs_page: String,
}

impl Documents {
    pub(crate) fn new(apis: &[Api]) -> Result<Self, String> {
        let mut files = BTreeMap::new();
        for api in apis {
            let json = serde_json::to_vec_pretty(&api.document)
                .map_err(|e| format!("{}: cannot render the served spec as JSON: {e}", api.name))?;
            let yaml = serde_norway::to_string(&api.document)
                .map_err(|e| format!("{}: cannot render the served spec as YAML: {e}", api.name))?;
            files.insert(format!("{}.json", api.name), ("application/json", json));
            files.insert(
                format!("{}.yaml", api.name),
                ("application/yaml", yaml.into_bytes()),
            );
        }
        let urls: Vec<Value> = apis
            .iter()
            .map(|a| json!({"url": format!("/openapi/{}.json", a.name), "name": a.name}))
            .collect();
        let docs_page = DOCS_PAGE.replace(
            "<div id=\"swagger-ui\"></div>",
            &format!(
                "<div id=\"swagger-ui\" data-urls=\"{}\"></div>",
                html_escape(&Value::Array(urls).to_string())
            ),
        );
        Ok(Documents { files, docs_page })
    }
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>API docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

/// Swagger UI's start-up, as a file so the page needs no inline script.
const DOCS_INIT: &str = r##"window.ui = SwaggerUIBundle({
  urls: JSON.parse(document.getElementById("swagger-ui").dataset.urls || "[]"),
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  // No badge fetched from validator.swagger.io: the page works offline and sends the spec
  // nowhere.
  validatorUrl: null,
});
"##;

const SWAGGER_UI_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const FAVICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");

/// What the Swagger UI page may load: its own script, styles and images, plus the inline
/// styles and `data:` images Swagger UI makes; requests only to this service (the specs,
/// "Try it out"). No other site may frame it.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The Swagger UI page, with the headers that keep it to its own resources and out of frames.
fn docs_page(page: String) -> Response {
    let mut response = asset("text/html; charset=utf-8", page);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn not_found(what: &str, request_id: &RequestId) -> Response {
    crate::error::ApiError::new(
        404,
        crate::error::codes::NOT_FOUND,
        format!("No such document: {}", crate::error::truncate_input(what)),
    )
    .into_response_for(&request_id.0)
}

/// The paths of [`document_routes`].
pub(crate) const DOCUMENT_PATHS: [&str; 4] =
    ["/openapi/{file}", "/docs", "/docs/", "/docs/{asset}"];

/// `/openapi/{file}`, `/docs` (also `/docs/`) and `/docs/{asset}`. Only known names are
/// served: nothing is read from disk, so there is no path to traverse.
pub(crate) fn document_routes(docs: Arc<Documents>) -> Router {
    let files = Arc::clone(&docs);
    let page = docs.docs_page.clone();
    Router::new()
        .route(
            DOCUMENT_PATHS[0],
            get(
                move |file: Result<Path<String>, PathRejection>,
                      Extension(request_id): Extension<RequestId>| {
                    let files = Arc::clone(&files);
                    async move {
                        // A name that is not UTF-8 cannot be one of ours: 404 like any other.
                        let file = file.map(|Path(f)| f).unwrap_or_default();
                        match files.files.get(&file) {
                            Some((content_type, bytes)) => asset(content_type, bytes.clone()),
                            None => not_found(&file, &request_id),
                        }
                    }
                },
            )
            .fallback(method_not_allowed),
        )
        .route(
            DOCUMENT_PATHS[1],
            get({
                let page = page.clone();
                move || async move { docs_page(page) }
            })
            .fallback(method_not_allowed),
        )
        .route(
            DOCUMENT_PATHS[2],
            get(move || async move { docs_page(page) }).fallback(method_not_allowed),
        )
        .route(
            DOCUMENT_PATHS[3],
            get(
                |name: Result<Path<String>, PathRejection>,
                 Extension(request_id): Extension<RequestId>| async move {
                    let name = name.map(|Path(n)| n).unwrap_or_default();
                    match name.as_str() {
                        "swagger-ui-bundle.js" => asset("text/javascript", SWAGGER_UI_JS),
                        "swagger-ui.css" => asset("text/css", SWAGGER_UI_CSS),
                        "favicon-32x32.png" => asset("image/png", FAVICON),
                        "init.js" => asset("text/javascript", DOCS_INIT),
                        _ => not_found(&name, &request_id),
                    }
                },
            )
            .fallback(method_not_allowed),
        )
}

/// The documents are read-only: any other method gets the JSON 405.
async fn method_not_allowed(request: axum::extract::Request) -> Response {
    let request_id = crate::middleware::request_id_of(&request);
    crate::error::ApiError::new(
        405,
        crate::error::codes::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; allowed: GET, HEAD",
            crate::error::truncate_input(request.method().as_str()),
            crate::error::truncate_input(request.uri().path())
        ),
    )
    .with_header(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"))
    .into_response_for(&request_id)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
