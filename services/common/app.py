"""The FastAPI base every service builds on: errors, limits, health, metrics, token checks."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.auth_api import SECURITY_SCHEMES
from services.common.collector import settle_collector
from services.common.context import AppContext
from services.common.errors import is_transient, is_unstorable_text
from services.common.jwks import TokenVerifier, parse_jwks, url_fetch
from services.common.kafka import broker_answers
from services.common.metrics import CachedRefresh, require_metrics_token
from services.common.problems import (
    EVERY_ROUTE,
    PROBLEM_SCHEMA,
    PROBLEM_SCHEMA_NAME,
    Problem,
    field_path,
    problem_response,
    problem_responses,
)
from services.common.settings import Settings

log = logging.getLogger("daybreak.http")
# once a browser has seen it over https, it goes to this host (and its subdomains) by https
# alone for a year: sent with cookie_secure on, which is to say behind https
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NOSNIFF = (b"x-content-type-options", b"nosniff")
MAX_REPORTED_ERRORS = 50  # a body of 20,000 unknown keys must not get a megabyte of errors back
ReadinessCheck = Callable[[AppContext], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    *,
    title: str,
    service: str,
    ctx: AppContext,
    lifespan: Lifespan | None = None,
    readiness: list[ReadinessCheck] | None = None,
) -> FastAPI:
    """A FastAPI app with problem+json errors, a body limit, health, metrics, and a verifier
    of bearer tokens addressed to `service` (unless the context brings its own)."""
    if ctx.verifier is None:
        ctx.verifier = token_verifier(ctx.settings, audience=service, http=ctx.issuer)
    # no /docs or /redoc: FastAPI's pages load Swagger UI and ReDoc from a CDN, a third
    # party's script beside the portal's session cookie; /openapi.json is the contract
    app = FastAPI(title=title, version="1.0.0", lifespan=_closing_issuer(ctx, lifespan),
                  responses=problem_responses(*EVERY_ROUTE), docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    _declare_problem_schema(app)
    _add_error_handlers(app)
    _add_observability(app, ctx)
    checks = [_check_database, *(readiness or [])]

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Readiness: the database and broker answer."""
        failed = []
        for check in checks:
            try:
                await check(ctx)
            except Exception as exc:
                failed.append(f"{check.__name__.strip('_')}: {type(exc).__name__}")
        if failed:
            return problem_response(503, "Not ready", "; ".join(failed))
        return JSONResponse({"status": "ready"})

    gauges = CachedRefresh(ctx, max_age_s=ctx.settings.metrics_cache_seconds)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, for DAYBREAK_METRICS_TOKEN's bearer alone; table and topic
        gauges are brought up to date first, at most once per DAYBREAK_METRICS_CACHE_SECONDS."""
        require_metrics_token(request.headers.get("authorization"), ctx.settings.metrics_token)
        await gauges()
        return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        BodyLimit, max_bytes=ctx.settings.max_body_bytes,
        upload_bytes=ctx.settings.max_upload_bytes,
    )
    app.add_middleware(SecurityHeaders, hsts=ctx.settings.cookie_secure)
    return app


def token_verifier(
    settings: Settings, *, audience: str, http: httpx.AsyncClient | None = None
) -> TokenVerifier:
    """Verify with the static JWKS when settings hold one, else with the issuer's URL."""
    static = parse_jwks(settings.jwks) if settings.jwks is not None else None
    return TokenVerifier(
        audience=audience, issuer=settings.jwt_issuer, static=static,
        fetch=None if static is not None else url_fetch(settings.jwks_url, http),
        cache_s=settings.jwks_cache_seconds, refetch_s=settings.jwks_refetch_seconds)


def _closing_issuer(ctx: AppContext, lifespan: Lifespan | None) -> Lifespan:
    """The service's lifespan, the collector settled once it started, then the identity
    client closed."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with lifespan(app) if lifespan is not None else nullcontext():
                settle_collector(ctx.settings.gc_young_threshold)
                yield
        finally:
            if ctx.issuer is not None:
                await ctx.issuer.aclose()

    return run


async def check_broker(ctx: AppContext) -> None:
    """Readiness: the broker answers a metadata request."""
    await broker_answers(ctx.settings.kafka())


async def _check_database(ctx: AppContext) -> None:
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _declare_problem_schema(app: FastAPI) -> None:
    """Every problem+json answer refers to one `Problem` schema among the app's components,
    beside the token endpoint's client authentication."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})[PROBLEM_SCHEMA_NAME] = PROBLEM_SCHEMA
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(request: Request) -> str:
    """The methods the request's path answers, across every route that serves it (Starlette
    names only the first route's), for a 405's `Allow`."""
    path = request.scope["path"]
    methods = {method for route in iter_route_contexts(request.app.routes)
               if route.path_regex.match(path) for method in route.methods or ()}
    return ", ".join(sorted(methods))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, type_=exc.type_, headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # name the field and the rule, never the submitted value
        found = exc.errors()
        errors = [
            {"field": field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
            for e in found[:MAX_REPORTED_ERRORS]
        ]
        return problem_response(
            422, "Invalid request body", f"{len(found)} field(s) failed validation.",
            extra={"errors": errors, "error_count": len(found)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(exc.status_code, _title(exc.status_code),
                                headers=headers or None)


def _unhandled(exc: Exception) -> JSONResponse:
    """422 for text the database cannot hold (NUL), 503 when the broker or database is away,
    else a bare 500; never the exception's text."""
    if is_unstorable_text(exc):
        return problem_response(422, "Invalid request body",
                                "A text value holds a character that cannot be stored (NUL).")
    if is_transient(exc):
        log.warning("dependency unavailable", extra={"exc_type": type(exc).__name__})
        return problem_response(
            503, "Service unavailable", "A dependency is unavailable; retry later.",
            headers={"Retry-After": "5"},
        )
    log.error("unhandled error", extra={"exc_type": type(exc).__name__})
    return problem_response(500, "Internal error")


def _title(status: int) -> str:
    return {400: "Malformed request body", 404: "Not found", 405: "Method not allowed",
            413: "Request body too large"}.get(
        status, "Error"
    )


def _add_observability(app: FastAPI, ctx: AppContext) -> None:
    app.add_middleware(
        Observe,
        latency=Histogram(
            "daybreak_http_request_seconds", "HTTP request latency",
            ["method", "route", "status"], registry=ctx.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        ),
        errors=Counter(
            "daybreak_http_errors_total", "HTTP 5xx responses", ["route"], registry=ctx.registry
        ),
    )


class Observe:
    """Times and logs each request by route template (never its URL), turning crashes into
    problem+json: 503 when a dependency is away, else a bare 500."""

    def __init__(self, app: ASGIApp, *, latency: Histogram, errors: Counter) -> None:
        self.app = app
        self.latency = latency
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers", ()))
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        status = 500
        sent_start = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                message["headers"] = [
                    *message.get("headers", ()), (b"x-request-id", request_id.encode())
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if sent_start:
                raise
            response = _unhandled(exc)
            await response(scope, receive, send_wrapper)
        route = getattr(scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - started
        self.latency.labels(scope["method"], route, str(status)).observe(elapsed)
        if status >= 500:
            self.errors.labels(route).inc()
        log.info("request", extra={
            "request_id": request_id, "method": scope["method"], "route": route,
            "status": status, "ms": round(elapsed * 1000, 2),
        })


class SecurityHeaders:
    """On every response, errors and 413s included: `X-Content-Type-Options: nosniff` (no
    body is ever taken for another type than it says), and `Strict-Transport-Security` when
    the deployment is served over HTTPS (`cookie_secure`)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.extra = [NOSNIFF, HSTS] if hsts else [NOSNIFF]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                named = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in self.extra if h[0] not in named]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses bodies over the limit with 413, whether or not Content-Length is sent.

    CSV uploads (`.../roster`, `.../calendar`) get the larger `upload_bytes` limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.json_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["path"].endswith(("/roster", "/calendar"))
        max_bytes = self.upload_bytes if is_upload else self.json_bytes
        await self._limited(scope, receive, send, max_bytes)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await _send_413(send, max_bytes)
            return
        received = 0
        refused = False

        async def limited() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # answer now and make the app see a disconnect: it must not read on
                    refused = True
                    await _send_413(send, max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, guarded_send)


async def _send_413(send: Send, max_bytes: int) -> None:
    response = problem_response(
        413, "Request body too large", f"The body must be at most {max_bytes} bytes."
    )
    await send({"type": "http.response.start", "status": 413,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
