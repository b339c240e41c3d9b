"""Errors as the API answers them: ``{"error": "<what was wrong>"}`` with a fitting status.

Library errors are raised by the domain (:mod:`controller.errors`); this is
the one place that turns them into HTTP. Validation errors name the field,
the value given and what was expected.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from controller.errors import (
    Busy,
    Forbidden,
    InvalidRequest,
    NotFound,
    StorageError,
    Unauthorized,
)
from controller.web.gate import BodyTimeout, BodyTooLarge

log = logging.getLogger(__name__)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _overflow(request: Request, exc: Exception) -> JSONResponse:
    return error(400, f"a number in the request is outside 64-bit integers: {exc}")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    def handler(status: int) -> Any:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            return error(status, str(exc))
        return handle

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(InvalidRequest, handler(400))
    app.add_exception_handler(ValueError, handler(400))
    # A number past SQLite's 64 bits that slipped past the models: the request's fault.
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(Unauthorized, handler(401))
    app.add_exception_handler(Forbidden, handler(403))
    app.add_exception_handler(BodyTooLarge, handler(413))
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(BodyTimeout, _body_timeout)
    app.add_exception_handler(StorageError, _storage)
    app.add_exception_handler(Exception, _internal)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return error(exc.status_code, str(message), dict(exc.headers or {}))


async def _busy(request: Request, exc: Exception) -> JSONResponse:
    retry = str(int(getattr(exc, "retry_after_s", 30)))
    return error(503, str(exc), {"Retry-After": retry})


async def _body_timeout(request: Request, exc: Exception) -> JSONResponse:
    return error(408, "request body not received in time", {"Connection": "close"})


async def _storage(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return error(503, f"storage unavailable: {exc}", {"Retry-After": "10"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, "internal error; see the controller log")


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error(400, "; ".join(describe(e) for e in exc.errors()))


_EXPECTED = {
    "int_parsing": "expected an integer", "int_type": "expected an integer",
    "int_from_float": "expected an integer", "float_parsing": "expected a number",
    "float_type": "expected a number", "bool_parsing": "expected true or false",
    "bool_type": "expected true or false", "string_type": "expected text",
    "dict_type": "expected a JSON object", "model_type": "expected a JSON object",
    "model_attributes_type": "expected an object", "list_type": "expected a list",
    "finite_number": "expected a finite number",
}


def describe(e: dict[str, Any]) -> str:
    """One validation error as a sentence: where, what was given, what was expected."""
    loc = [str(p) for p in e.get("loc", ())]
    kind, ctx = e.get("type", ""), e.get("ctx") or {}
    if kind == "json_invalid":
        return f"request body is not JSON: {ctx.get('error', e.get('msg'))}"
    where = _where(loc)
    if kind == "missing":
        return f"{where}: required" if where else "request body: required"
    if not where and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "request body must be a JSON object"
    if kind == "literal_error":
        expected = f"expected one of {ctx.get('expected')}"
    elif kind == "extra_forbidden":
        return f"{where}: unknown field"
    else:
        expected = _EXPECTED.get(kind) or _bounds(kind, ctx) or str(e.get("msg", "")).lower()
    return f"{where} {e.get('input')!r}: {expected}"


def _where(loc: list[str]) -> str:
    if not loc:
        return ""
    source, rest = loc[0], loc[1:]
    if source == "body":
        return ".".join(rest)
    if source in ("query", "path", "header"):
        return f"{source} parameter {'.'.join(rest)}"
    return ".".join(loc)


#: Pydantic's bound errors: (what to say, the context key holding the bound).
_BOUNDS = {"greater_than": ("above", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("below", "lt"), "less_than_equal": ("at most", "le")}


def _bounds(kind: str, ctx: dict[str, Any]) -> str | None:
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"expected {word} {ctx.get(key)}"
    if kind in ("string_too_short", "too_short"):
        return f"expected at least {ctx.get('min_length')} character(s)"
    if kind in ("string_too_long", "too_long"):
        return f"expected at most {ctx.get('max_length')} characters"
    return None
