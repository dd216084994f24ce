//! Tests only: the code klue-codegen generates for `apis/` and for the spec corpus (OpenAPI
//! 3.1, 3.0 and Swagger 2.0 variants), compiled as a library so that `cargo build`, `cargo
//! clippy` and `cargo test` check every generated model, trait and client. Its only dependency
//! is `klue`, which proves generated code needs nothing else.
//!
//! A served API binds its handlers at compile time: an implementation missing an operation's
//! method does not compile (E0046, "not all trait items implemented, missing: `get_item`"):
//!
//! ```compile_fail,E0046
//! use klue_codegen_check::apis::helloworld::models::Greeting;
//! use klue_codegen_check::apis::helloworld::server::{HelloResponse, HelloworldApi};
//! use klue::{ApiError, RequestContext};
//!
//! struct OnlyHello;
//!
//! impl HelloworldApi for OnlyHello {
//!     async fn hello(&self, _ctx: RequestContext, name: String) -> Result<HelloResponse, ApiError> {
//!         Ok(HelloResponse::Ok(Greeting { message: format!("hello {name}") }))
//!     }
//! }
//! ```
//!
//! while a complete one does:
//!
//! ```
//! use klue_codegen_check::apis::helloworld::models::{Greeting, Item, ItemList, NewItem};
//! use klue_codegen_check::apis::helloworld::server::*;
//! use klue::{ApiError, RequestContext};
//!
//! struct Complete;
//!
//! impl HelloworldApi for Complete {
//!     async fn hello(&self, _ctx: RequestContext, name: String) -> Result<HelloResponse, ApiError> {
//!         Ok(HelloResponse::Ok(Greeting { message: format!("hello {name}") }))
//!     }
//!     async fn create_item(&self, _ctx: RequestContext, body: NewItem) -> Result<CreateItemResponse, ApiError> {
//!         Ok(CreateItemResponse::Created(Item {
//!             id: klue::uuid::Uuid::nil(),
//!             name: body.name,
//!             count: body.count,
//!             tags: body.tags.unwrap_or_default(),
//!         }))
//!     }
//!     async fn list_items(&self, _ctx: RequestContext, _limit: i64, _offset: i64) -> Result<ListItemsResponse, ApiError> {
//!         Ok(ItemList { items: vec![], total: 0 }.into())
//!     }
//!     async fn get_item(&self, _ctx: RequestContext, id: klue::uuid::Uuid) -> Result<GetItemResponse, ApiError> {
//!         Err(ApiError::new(404, "ITEM_NOT_FOUND", format!("no item {id}")))
//!     }
//! }
//!
//! let handlers = handlers(Complete);
//! assert!(handlers.get("get_item").is_some());
//! ```

/// Generated from `apis/` (helloworld served).
pub mod apis {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}

/// Generated from the OpenAPI 3.1 corpus, every API served.
pub mod corpus_openapi31 {
    include!(concat!(env!("OUT_DIR"), "/corpus_openapi31.rs"));
}

/// Generated from the OpenAPI 3.0 corpus, every API served.
pub mod corpus_openapi30 {
    include!(concat!(env!("OUT_DIR"), "/corpus_openapi30.rs"));
}

/// Generated from the Swagger 2.0 corpus, every API served.
pub mod corpus_swagger2 {
    include!(concat!(env!("OUT_DIR"), "/corpus_swagger2.rs"));
}

/// Generated from klue-codegen's edge-case spec, every API served.
pub mod edge_cases {
    include!(concat!(env!("OUT_DIR"), "/edge.rs"));
}
