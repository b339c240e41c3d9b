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


class UserCreate(RequestBody):
    name: str = Field(max_length=64)
    role: str = Field(description="admin, operator, leader or technician")
    password: str = Field(max_length=1024, description="at least 10 characters")


class UserChange(RequestBody):
    role: str | None = Field(None, description="the new role")
    password: str | None = Field(None, max_length=1024,
                                 description="a new password (empty: unchanged)")


class TokenCreate(RequestBody):
    name: str = Field(max_length=64, description="the token's name, also its user's")
    role: str | None = Field(None, description="the user's role (a new user: admin if none; "
                                               "an existing one keeps theirs if none)")


class Token(ResponseBody):
    name: str
    user: str | None
    role: str | None
    created: float


class TokenCreated(Token):
    token: str = Field(description="the token itself: shown this once, never again")


class AuditEntry(ResponseBody):
    id: int
    at: float
    user: str | None
    role: str | None
    method: str
    path: str
    status: int
    address: str | None
