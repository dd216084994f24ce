"""schemathesis hooks of `cargo xtask reliability contract` (loaded through SCHEMATHESIS_HOOKS).

One hook, for one documented decision of the runtime, and nothing broader:

An empty value of an optional query parameter counts as absent (`GET /v1/items?limit=` is
`GET /v1/items`), as in klue-microservice; see finding 4 in docs/reliability.md and the README.
schemathesis' negative phase sometimes negates such a parameter into a value that serializes to
nothing on the wire (an empty object or array, an empty string), e.g.
`GET /v1/items?limit=95&offset=` for `offset: {}`, and then reports the 200 as ST201 "Schema-
violating request accepted". `filter_failure` drops exactly that failure: an ST201 whose invalid
data is only in the query, where every parameter schemathesis negated is an optional query
parameter that went out as a single empty value. Any other ST201 (another location, a required
parameter, a non-empty value, a value given twice) is kept and fails the run. Each dropped failure
is appended, with the request's URL, to the file named by KLUE_RELIABILITY_DROPPED, which the xtask
counts and prints.
"""

import os
from urllib.parse import parse_qsl, urlsplit

import schemathesis


def _location_name(location) -> str:
    return str(getattr(location, "name", location)).lower()


def _negated_parameters(data) -> set:
    if data is None:
        return set()
    if getattr(data, "parameter", None):
        return {data.parameter}
    return {m.parameter for m in getattr(data, "mutations", ()) if m.parameter}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if getattr(failure, "code", None) != "ST201":
        return True
    meta = case.meta
    if meta is None:
        return True
    negative = {_location_name(loc) for loc, c in meta.components.items() if c.mode.is_negative}
    if negative != {"query"}:
        return True
    data = getattr(meta.phase, "data", None)
    location = getattr(data, "parameter_location", None)
    if location is not None and _location_name(location) != "query":
        return True
    negated = _negated_parameters(data)
    if not negated:
        return True
    optional = {p.name for p in case.operation.query if not p.is_required}
    sent = {}
    for name, value in parse_qsl(urlsplit(response.request.url).query, keep_blank_values=True):
        sent.setdefault(name, []).append(value)
    if not all(name in optional and sent.get(name) == [""] for name in negated):
        return True
    # Finding 4: drop it, and say so.
    record = os.environ.get("KLUE_RELIABILITY_DROPPED")
    if record:
        with open(record, "a", encoding="utf-8") as out:
            out.write(f"ST201 {case.operation.label} {response.request.url} (empty {', '.join(sorted(negated))})\n")
    return False
