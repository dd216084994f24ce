//! The helloworld API's handlers: greetings and an in-memory item store.

use crate::api::helloworld::models::{Greeting, Item, ItemList, NewItem};
use crate::api::helloworld::server::{
    CreateItemResponse, GetItemResponse, HelloResponse, HelloworldApi, ListItemsResponse,
};
use klue::{ApiError, RequestContext};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

/// Items in creation order, with an index by id.
#[derive(Debug, Default)]
struct Store {
    items: Vec<Item>,
    by_id: HashMap<Uuid, usize>,
}

/// The implementation of the helloworld API.
#[derive(Debug, Clone, Default)]
pub struct Helloworld {
    store: Arc<RwLock<Store>>,
}

impl Helloworld {
    // The store is never left half-updated (no panics while a guard is held), so a poisoned
    // lock still guards consistent data.
    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HelloworldApi for Helloworld {
    async fn hello(&self, _ctx: RequestContext, name: String) -> Result<HelloResponse, ApiError> {
        Ok(HelloResponse::Ok(Greeting {
            message: format!("hello {name}"),
        }))
    }

    async fn create_item(
        &self,
        _ctx: RequestContext,
        body: NewItem,
    ) -> Result<CreateItemResponse, ApiError> {
        let item = Item {
            id: Uuid::new_v4(),
            name: body.name,
            count: body.count,
            tags: body.tags.unwrap_or_default(),
        };
        let mut store = self.write();
        let index = store.items.len();
        store.by_id.insert(item.id, index);
        store.items.push(item.clone());
        Ok(CreateItemResponse::Created(item))
    }

    async fn list_items(
        &self,
        _ctx: RequestContext,
        limit: i64,
        offset: i64,
    ) -> Result<ListItemsResponse, ApiError> {
        let store = self.read();
        let offset = usize::try_from(offset).unwrap_or(0);
        let limit = usize::try_from(limit).unwrap_or(0);
        let items = store
            .items
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        Ok(ListItemsResponse::Ok(ItemList {
            items,
            total: store.items.len() as i64,
        }))
    }

    async fn get_item(&self, _ctx: RequestContext, id: Uuid) -> Result<GetItemResponse, ApiError> {
        let store = self.read();
        match store.by_id.get(&id).and_then(|&i| store.items.get(i)) {
            Some(item) => Ok(GetItemResponse::Ok(item.clone())),
            None => Err(ApiError::new(
                404,
                "ITEM_NOT_FOUND",
                format!("No item with id {id}"),
            )),
        }
    }
}
