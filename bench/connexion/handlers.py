"""Handlers of the Connexion peer: the helloworld operations, an in-memory store per worker."""

import os
import uuid

import jwt

SECRET = os.environ.get("BENCH_JWT_SECRET", "bench-secret-0123456789abcdef0123")
AUDIENCE = os.environ.get("BENCH_JWT_AUDIENCE", "klue-bench")

ITEMS = []
BY_ID = {}


def decode_token(token):
    """x-bearerInfoFunc: the claims of a valid HS256 token for our audience, else None (401)."""
    try:
        return jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    except jwt.PyJWTError:
        return None


async def ping():
    return {}


async def hello(name):
    return {"message": f"hello {name}"}


async def create_item(body):
    item = {
        "id": str(uuid.uuid4()),
        "name": body["name"],
        "count": body["count"],
        "tags": body.get("tags") or [],
    }
    BY_ID[item["id"]] = len(ITEMS)
    ITEMS.append(item)
    return item, 201


async def list_items(limit=20, offset=0):
    return {"items": ITEMS[offset : offset + limit], "total": len(ITEMS)}


async def get_item(id):
    index = BY_ID.get(str(id))
    if index is None:
        return {"status": 404, "error": "ITEM_NOT_FOUND", "error_description": f"No item with id {id}"}, 404
    return ITEMS[index]
