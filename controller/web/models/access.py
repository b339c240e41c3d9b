"""Bodies of the access routes: users, the audit log."""

from __future__ import annotations

from pydantic import Field

from controller.web.models import RequestBody, ResponseBody


class SignIn(RequestBody):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Caller(ResponseBody):
    user: str
    role: str


class Session(Caller):
    csrf: str = Field(description="send as X-CSRF-Token with every state-changing request")


class User(ResponseBody):
    name: str
    role: str
    has_password: bool
    created: float
    disabled: bool


class AuditEntry(ResponseBody):
    id: int
    at: float
    user: str | None
    role: str | None
    method: str
    path: str
    status: int
    address: str | None
