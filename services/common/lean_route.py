"""A hot route that reads its own request: the bearer, scope and JSON body that FastAPI's
dependencies give, without solving them per request.

`POST /v1/incidents` spent a tenth of its CPU in FastAPI's dependency solving (it parses the
cookies and the query string of every request whether a route reads them or not) and its
content-type check. Such a route declares only `request: Request` and calls these, and
`declared(...)` gives its OpenAPI what the dependencies would have declared, so the
contract is the same. The answers are the same too: 401/403 as `require_scope`, then a 422
problem naming each field and rule, never a value.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.common.auth_api import BEARER_SCHEME, current_principal, holding
from services.common.context import AppContext
from services.common.security import Principal

M = TypeVar("M", bound=BaseModel)


async def scoped_principal(request: Request, ctx: AppContext, scope: str) -> Principal:
    """The caller, as `Depends(require_scope(scope))` gives it: 401 without a valid bearer
    token, 403 without the scope."""
    return holding(await current_principal(ctx, await BEARER_SCHEME(request)), scope)


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as a `model`, parsed and validated in one pass; 422 naming the
    fields otherwise (an empty body, another content type, JSON that is not JSON)."""
    raw = await request.body()
    if not raw:
        _refuse("missing", "Field required")
    if not is_json(request.headers.get("content-type")):
        _refuse("content_type", "Expected a JSON body (Content-Type: application/json)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]) from None


def is_json(content_type: str | None) -> bool:
    """`application/json` or `application/…+json`, parameters (a charset) allowed: what
    FastAPI reads as JSON."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def declared(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads a required `model` body and a bearer token
    itself: what FastAPI declares for `body: model` and the bearer dependency."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "security": [{BEARER_SCHEME.scheme_name: []}]}


def _refuse(kind: str, message: str) -> NoReturn:
    raise RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])
