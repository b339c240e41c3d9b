"""Bodies of the access routes: users, the audit log."""

from __future__ import annotations

from controller.web.models import ResponseBody


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
