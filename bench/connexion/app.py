"""Connexion 3 peer for `cargo xtask bench`: serves apis/helloworld.yaml with request validation on.

Run with uvicorn from this folder (the bench does this, with one worker per core):

    BENCH_JWT_SECRET=... BENCH_JWT_AUDIENCE=... \
        python -m uvicorn app:app --host 127.0.0.1 --port 8080 --workers "$(nproc)"

The spec is the repository's `apis/helloworld.yaml` (or `BENCH_SPEC`), loaded unchanged except for
what klue adds itself and Connexion cannot know about:
  * klue's built-in `GET /ping` (answers `{}`) and the built-in `Error` model that the spec refers to;
  * the JWT check for the `jwt` bearer scheme (`x-bearerInfoFunc`), done with PyJWT, HS256, with
    the audience required, as klue does;
  * Connexion 3 accepts only OpenAPI 3.0 documents: a 3.1 document is declared as 3.0.3. The
    helloworld spec uses nothing that 3.0 and 3.1 read differently.
"""

import os
import pathlib

import yaml
from connexion import AsyncApp
from connexion.resolver import RelativeResolver

HERE = pathlib.Path(__file__).resolve().parent
SPEC = pathlib.Path(os.environ.get("BENCH_SPEC", HERE.parent.parent / "apis" / "helloworld.yaml"))

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "error_id": {"type": "string"},
        "user_message": {"type": "string"},
    },
    "required": ["status", "error"],
}

PING = {
    "get": {
        "operationId": "ping",
        "responses": {
            "200": {
                "description": "Alive.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }
}


def load_spec():
    """The helloworld spec as a dict, plus klue's built-ins (see the module doc)."""
    with open(SPEC, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if str(spec.get("openapi", "")).startswith("3.1"):
        spec["openapi"] = "3.0.3"
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for scheme in components.get("securitySchemes", {}).values():
        if scheme.get("type") == "http" and scheme.get("scheme") == "bearer":
            scheme["x-bearerInfoFunc"] = "handlers.decode_token"
    spec.setdefault("paths", {}).setdefault("/ping", PING)
    return spec


app = AsyncApp(__name__, specification_dir=str(HERE))
app.add_api(
    load_spec(),
    resolver=RelativeResolver("handlers"),
    validate_responses=False,
    strict_validation=False,
)
