//! Checks of the helloworld API, through its generated client. Each creates what it needs and
//! asserts on what it created (by id), never on totals, so runs can repeat against the same
//! deployment.

use crate::api::helloworld::client::HelloworldClient;
use crate::api::helloworld::models::{Item, NewItem};
use klue::client::{Call, ClientError, Method};
use klue_accept::{
    CheckResult, Context, Failure, describe, expect_client_error, expect_error, send,
};

/// The generated client of the helloworld API, sending no token.
fn client(ctx: &Context) -> HelloworldClient {
    HelloworldClient::from_client(ctx.raw().clone())
}

/// `GET /v1/hello/{name}` greets by name (a name with a space checks path encoding).
pub async fn hello(ctx: &Context) -> CheckResult {
    const A: &str = "GET /v1/hello/{name} -> 200 {message: \"hello <name>\"}";
    let name = format!("klue accept {}", short_id());
    let greeting = client(ctx)
        .hello(&name)
        .await
        .map_err(|e| Failure::new(A, describe(&e)))?;
    let expected = format!("hello {name}");
    if greeting.message != expected {
        return Err(Failure::new(
            A,
            format!("got message {:?}, expected {expected:?}", greeting.message),
        ));
    }
    Ok(())
}

/// A create, with a token, answers the item; the item can then be read by id and is listed.
pub async fn item_lifecycle(ctx: &Context) -> CheckResult {
    const CREATE: &str = "POST /v1/items with a token -> 201 the item";
    let authed = HelloworldClient::from_client(ctx.authed(CREATE)?);
    let new = NewItem {
        name: format!("accept-{}", short_id()),
        count: 3,
        tags: Some(vec!["acceptance".to_string(), "klue".to_string()]),
    };
    let created = authed
        .create_item(&new)
        .await
        .map_err(|e| Failure::new(CREATE, describe(&e)))?;
    let expected_tags = new.tags.clone().unwrap_or_default();
    if created.name != new.name || created.count != new.count || created.tags != expected_tags {
        return Err(Failure::new(
            CREATE,
            format!("sent {new:?}, got {created:?}"),
        ));
    }

    const GET: &str = "GET /v1/items/{id} of the created item -> 200 the same item";
    let got = client(ctx)
        .get_item(created.id)
        .await
        .map_err(|e| Failure::new(GET, describe(&e)))?;
    if got != created {
        return Err(Failure::new(
            GET,
            format!("created {created:?}, got {got:?}"),
        ));
    }

    const LIST: &str = "GET /v1/items lists the created item";
    let listed = find_listed(ctx, &created, LIST).await?;
    if listed != created {
        return Err(Failure::new(
            LIST,
            format!("created {created:?}, listed {listed:?}"),
        ));
    }
    Ok(())
}

/// Pages through `GET /v1/items` from the newest page back (other runs' items stay in the
/// store) until the item is found.
async fn find_listed(ctx: &Context, item: &Item, assertion: &str) -> Result<Item, Failure> {
    const PAGE: i64 = 100;
    const MAX_PAGES: i64 = 100;
    let fail = |e: ClientError| Failure::new(assertion, describe(&e));
    let first = client(ctx)
        .list_items(Some(1), Some(0))
        .await
        .map_err(fail)?;
    if first.total < 1 {
        return Err(Failure::new(
            assertion,
            format!("`total` is {} after a create", first.total),
        ));
    }
    let mut offset = (first.total - PAGE).max(0);
    for _ in 0..MAX_PAGES {
        let page = client(ctx)
            .list_items(Some(PAGE), Some(offset))
            .await
            .map_err(fail)?;
        if let Some(found) = page.items.iter().find(|i| i.id == item.id) {
            return Ok(found.clone());
        }
        if offset == 0 {
            break;
        }
        offset = (offset - PAGE).max(0);
    }
    Err(Failure::new(
        assertion,
        format!(
            "item {} is not in the list (total {}, searched back from the newest)",
            item.id, first.total
        ),
    ))
}

/// Creating without a token is refused with 401 `AUTHORIZATION_HEADER_MISSING`, before the
/// body is validated (an anonymous caller never learns what a valid body looks like).
pub async fn create_needs_token(ctx: &Context) -> CheckResult {
    const A: &str = "POST /v1/items without a token -> 401 AUTHORIZATION_HEADER_MISSING";
    let new = NewItem {
        name: format!("anon-{}", short_id()),
        count: 1,
        tags: None,
    };
    let result = client(ctx).create_item(&new).await;
    expect_client_error(result, 401, "AUTHORIZATION_HEADER_MISSING", A)?;

    const B: &str = "POST /v1/items without a token and an invalid body -> 401 (auth first)";
    let invalid = NewItem {
        name: String::new(),
        count: -1,
        tags: None,
    };
    let result = client(ctx).create_item(&invalid).await;
    expect_client_error(result, 401, "AUTHORIZATION_HEADER_MISSING", B)
}

/// An id nobody created answers 404 `ITEM_NOT_FOUND` with a klue error body.
pub async fn unknown_item_is_404(ctx: &Context) -> CheckResult {
    const A: &str = "GET /v1/items/{unknown id} -> 404 ITEM_NOT_FOUND";
    let result = client(ctx).get_item(uuid::Uuid::new_v4()).await;
    expect_client_error(result, 404, "ITEM_NOT_FOUND", A)?;
    let path = format!("/v1/items/{}", uuid::Uuid::new_v4());
    let response = send(ctx.raw(), Call::new(Method::GET, &path), A).await?;
    expect_error(&response, 404, "ITEM_NOT_FOUND", A)
}

/// Invalid input answers 400 `INVALID_PARAMETER` naming the field: a body breaking the
/// schema, a too long path parameter, a malformed uuid, an out-of-range query parameter.
pub async fn invalid_input_is_400(ctx: &Context) -> CheckResult {
    const BODY: &str =
        "POST /v1/items {name: \"\", count: -1} -> 400 INVALID_PARAMETER on /name and /count";
    let authed = HelloworldClient::from_client(ctx.authed(BODY)?);
    let invalid = NewItem {
        name: String::new(),
        count: -1,
        tags: None,
    };
    let error = match authed.create_item(&invalid).await {
        Ok(item) => {
            return Err(Failure::new(
                BODY,
                format!("the item was created: {item:?}"),
            ));
        }
        Err(e) if e.status() == Some(400) && e.code() == Some("INVALID_PARAMETER") => e,
        Err(e) => return Err(Failure::new(BODY, describe(&e))),
    };
    let pointers: Vec<&str> = error
        .error_body()
        .map(|b| {
            b.errors
                .iter()
                .filter_map(|f| f.pointer.as_deref())
                .collect()
        })
        .unwrap_or_default();
    for field in ["/name", "/count"] {
        if !pointers.iter().any(|p| p.starts_with(field)) {
            return Err(Failure::new(
                BODY,
                format!("no error for {field}: {}", error.body().unwrap_or_default()),
            ));
        }
    }

    const NAME: &str = "GET /v1/hello/{33 characters} -> 400 INVALID_PARAMETER on `name`";
    let result = client(ctx).hello(&"x".repeat(33)).await;
    match result {
        Err(e) if e.status() == Some(400) && e.code() == Some("INVALID_PARAMETER") => {
            let named = e
                .error_body()
                .is_some_and(|b| b.errors.iter().any(|f| f.name.as_deref() == Some("name")));
            if !named {
                return Err(Failure::new(
                    NAME,
                    format!("no error names `name`: {}", e.body().unwrap_or_default()),
                ));
            }
        }
        other => expect_client_error(other, 400, "INVALID_PARAMETER", NAME)?,
    }

    const UUID: &str = "GET /v1/items/not-a-uuid -> 400 INVALID_PARAMETER";
    let response = send(
        ctx.raw(),
        Call::new(Method::GET, "/v1/items/not-a-uuid"),
        UUID,
    )
    .await?;
    expect_error(&response, 400, "INVALID_PARAMETER", UUID)?;

    const LIMIT: &str = "GET /v1/items?limit=0 -> 400 INVALID_PARAMETER";
    let result = client(ctx).list_items(Some(0), None).await;
    expect_client_error(result, 400, "INVALID_PARAMETER", LIMIT)
}

/// 8 hex characters, to tell this run's data from others'.
fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
