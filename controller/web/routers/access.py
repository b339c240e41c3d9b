"""People and accountability: users and their roles, the audit log (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from controller.access import audit, users
from controller.db.connection import ReaderPool
from controller.web.auth import allow, require_token
from controller.web.deps import readers
from controller.web.models import access as m

router = APIRouter(prefix="/api/v1", tags=["access"], dependencies=[Depends(require_token)])


@router.get("/users", dependencies=[allow()], response_model=list[m.User],
            summary="Users and their roles")
def list_users(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return users.list_users(db)


@router.get("/audit", dependencies=[allow()], response_model=list[m.AuditEntry],
            summary="State-changing requests, newest first: who, what, when, from where")
def audit_log(user: str | None = None,
              since: float | None = Query(None, description="Unix time"),
              limit: int = Query(200, ge=1, le=10_000),
              pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return audit.list_entries(db, user=user, since=since, limit=limit)
