"""Errors as the API answers them: ``{"error": "<what was wrong>"}`` with a fitting status.

Library errors are raised by the domain (:mod:`controller.errors`); this is
the one place that turns them into HTTP. Validation errors name the field,
the value given and what was expected.

The answer is in the caller's language when it is known: the console's
(its ``tt_lang`` cookie, else Vietnamese for a signed-in browser) or an
``Accept-Language`` that prefers Vietnamese. A message marked for
translation (:func:`controller.errors._t`) comes from the catalog
``errors.po`` and the English is kept beside it,
``{"error": "<Vietnamese>", "error_en": "<English>"}``, for logs and tools;
an answer without ``error_en`` is English. API clients that name no
language get English, as always.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from controller.access.sessions import COOKIE as SESSION_COOKIE
from controller.errors import (
    Busy,
    Forbidden,
    InvalidRequest,
    NotFound,
    StorageError,
    Text,
    Unauthorized,
    _t,
    message_of,
    text,
)
from controller.web.console import i18n
from controller.web.gate import BodyTimeout, BodyTooLarge

log = logging.getLogger(__name__)
ENGLISH = "en"


def language(cookie: str | None, accept_language: str | None) -> str:
    """The language a caller reads refusals in: the one chosen on the console's switch,
    else Vietnamese (the console's default) for a signed-in browser, else Vietnamese
    when ``Accept-Language`` prefers it to English, else English."""
    cookies = cookie_parser(cookie or "")
    chosen = cookies.get(i18n.COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    if SESSION_COOKIE in cookies:
        return i18n.DEFAULT
    return _accepted(accept_language)


def _accepted(header: str | None) -> str:
    """The language of ours that ``Accept-Language`` ranks highest (the first on a tie)."""
    best, best_q = ENGLISH, 0.0
    for item in (header or "").split(","):
        tag, *options = item.split(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        for option in options:
            key, _, value = option.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if lang in i18n.LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def request_language(request: Request) -> str:
    return language(request.headers.get("cookie"), request.headers.get("accept-language"))


def say(message: str, lang: str) -> str:
    """``message`` in ``lang``: a :class:`~controller.errors.Text` from the catalogs,
    anything else as it is."""
    if lang == ENGLISH or not isinstance(message, Text):
        return str(message)
    return message.localize(i18n.translations(lang).gettext)


def page_text(request: Request, message: str) -> str:
    """``message`` in the language of the console page answering ``request``."""
    return say(message, i18n.choose(request.cookies.get(i18n.COOKIE)))


def body(message: str, lang: str) -> dict[str, str]:
    """The error's JSON: ``error`` in ``lang``, and ``error_en`` when it was translated."""
    return _content(str(message), say(message, lang))


def _content(english: str, said: str) -> dict[str, str]:
    return {"error": said} if said == english else {"error": said, "error_en": english}


def error(status: int, message: str, headers: dict[str, str] | None = None, *,
          lang: str = ENGLISH) -> JSONResponse:
    return _response(status, body(message, lang), headers, lang)


def _response(status: int, content: dict[str, str], headers: dict[str, str] | None,
              lang: str) -> JSONResponse:
    if "error_en" in content:
        headers = {**(headers or {}), "Content-Language": lang}
    return JSONResponse(content, status_code=status, headers=headers)


def answer(request: Request, status: int, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer to ``request`` in its caller's language."""
    return error(status, message, headers, lang=request_language(request))


def gate_body(headers: dict[bytes, bytes], message: str) -> dict[str, str]:
    """What the gate answers when it refuses a request (it has only the raw headers)."""
    def header(name: bytes) -> str | None:
        raw = headers.get(name)
        return raw.decode("latin-1") if raw is not None else None
    return body(message, language(header(b"cookie"), header(b"accept-language")))


async def _overflow(request: Request, exc: Exception) -> JSONResponse:
    return answer(request, 400, text(_t("a number in the request is outside 64-bit integers:"
                                        " {detail}"), detail=str(exc)))


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    def handler(status: int) -> Any:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            return answer(request, status, message_of(exc))
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
    return answer(request, 503, message_of(exc), {"Retry-After": retry})


async def _body_timeout(request: Request, exc: Exception) -> JSONResponse:
    return answer(request, 408, text(_t("request body not received in time")),
                  {"Connection": "close"})


async def _storage(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return error(503, f"storage unavailable: {exc}", {"Retry-After": "10"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return answer(request, 500, text(_t("internal error; see the controller log")))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = [describe(e) for e in exc.errors()]
    lang = request_language(request)
    content = _content("; ".join(parts), "; ".join(say(p, lang) for p in parts))
    return _response(400, content, None, lang)


_EXPECTED = {
    "int_parsing": _t("expected an integer"), "int_type": _t("expected an integer"),
    "int_from_float": _t("expected an integer"), "float_parsing": _t("expected a number"),
    "float_type": _t("expected a number"), "bool_parsing": _t("expected true or false"),
    "bool_type": _t("expected true or false"), "string_type": _t("expected text"),
    "dict_type": _t("expected a JSON object"), "model_type": _t("expected a JSON object"),
    "model_attributes_type": _t("expected an object"), "list_type": _t("expected a list"),
    "finite_number": _t("expected a finite number"),
}


def describe(e: dict[str, Any]) -> str:
    """One validation error as a sentence: where, what was given, what was expected
    (a :class:`~controller.errors.Text`, unless it falls back to pydantic's own words)."""
    loc = [str(p) for p in e.get("loc", ())]
    kind, ctx = e.get("type", ""), e.get("ctx") or {}
    if kind == "json_invalid":
        return text(_t("request body is not JSON: {detail}"),
                    detail=ctx.get("error", e.get("msg")))
    where = _where(loc)
    if kind == "missing":
        return (text(_t("{where}: required"), where=where) if where
                else text(_t("request body: required")))
    if not where and kind in ("model_attributes_type", "dict_type", "model_type"):
        return text(_t("request body must be a JSON object"))
    if kind == "extra_forbidden":
        return text(_t("{where}: unknown field"), where=where)
    if kind == "literal_error":
        expected: str | None = text(_t("expected one of {choices}"), choices=ctx.get("expected"))
    elif kind in _EXPECTED:
        expected = text(_EXPECTED[kind])
    else:
        expected = _bounds(kind, ctx)
    if expected is None:  # pydantic's own words: English
        return f"{where} {e.get('input')!r}: {str(e.get('msg', '')).lower()}"
    return text(_t("{where} {value!r}: {expected}"), where=where, value=e.get("input"),
                expected=expected)


#: Where a parameter outside the body is, by pydantic's first ``loc`` item.
_SOURCES = {"query": _t("query parameter {name}"), "path": _t("path parameter {name}"),
            "header": _t("header parameter {name}")}


def _where(loc: list[str]) -> str:
    if not loc:
        return ""
    source, rest = loc[0], loc[1:]
    if source == "body":
        return ".".join(rest)
    if source in _SOURCES:
        return text(_SOURCES[source], name=".".join(rest))
    return ".".join(loc)


#: Pydantic's bound errors: (what to say, the context key holding the bound).
_BOUNDS = {"greater_than": (_t("expected above {bound}"), "gt"),
           "greater_than_equal": (_t("expected at least {bound}"), "ge"),
           "less_than": (_t("expected below {bound}"), "lt"),
           "less_than_equal": (_t("expected at most {bound}"), "le")}


def _bounds(kind: str, ctx: dict[str, Any]) -> str | None:
    if kind in _BOUNDS:
        template, key = _BOUNDS[kind]
        return text(template, bound=ctx.get(key))
    if kind in ("string_too_short", "too_short"):
        return text(_t("expected at least {length} character(s)"),
                    length=ctx.get("min_length"))
    if kind in ("string_too_long", "too_long"):
        return text(_t("expected at most {length} characters"), length=ctx.get("max_length"))
    return None
