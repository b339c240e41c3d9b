"""People and accountability: users and their roles, the audit log (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from controller.access import audit, users
from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.access.sessions import COOKIE, MAX_AGE_S
from controller.db.connection import ReaderPool
from controller.web.auth import allow, require_token
from controller.web.deps import Services, readers, services
from controller.web.models import access as m

router = APIRouter(prefix="/api/v1", tags=["access"], dependencies=[Depends(require_token)])
public = APIRouter(prefix="/api/v1", tags=["access"])


@public.post("/session", response_model=m.Session,
             responses={401: {"description": "wrong user name or password"},
                        503: {"description": "locked after repeated wrong passwords"}},
             summary="Sign in: sets the session cookie; the answer holds the CSRF token "
                     "that state-changing requests must send as X-CSRF-Token")
def sign_in(body: m.SignIn, request: Request, response: Response,
            pool: ReaderPool = Depends(readers), svc: Services = Depends(services)) -> Any:
    address = request.client.host if request.client else None
    with pool.connection() as db:
        cookie, csrf, caller = svc.sessions.login(db, body.name, body.password, address)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=int(MAX_AGE_S))
    return {"user": caller.name, "role": caller.role, "csrf": csrf}


@router.get("/session", dependencies=[allow(OPERATOR, LEADER, TECHNICIAN)],
            response_model=m.Caller, summary="Who is signed in")
def who(caller: Caller = Depends(require_token)) -> Any:
    return {"user": caller.name, "role": caller.role}


@router.delete("/session", dependencies=[allow(OPERATOR, LEADER, TECHNICIAN)],
               response_model=m.Caller, summary="Sign out: the session ends")
def sign_out(request: Request, response: Response, caller: Caller = Depends(require_token),
             svc: Services = Depends(services)) -> Any:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        svc.sessions.logout(cookie)
    response.delete_cookie(COOKIE, path="/")
    return {"user": caller.name, "role": caller.role}


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
