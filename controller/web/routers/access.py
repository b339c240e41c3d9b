"""People and accountability: users and their roles, the audit log (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from controller.access import audit, tokens, users
from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.access.sessions import COOKIE, MAX_AGE_S
from controller.db.connection import ReaderPool
from controller.errors import InvalidRequest, NotFound, _t
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


@router.post("/users", dependencies=[allow()], response_model=m.User, status_code=201,
             summary="Add a user with a role and a password")
def add_user(body: m.UserCreate, svc: Services = Depends(services)) -> Any:
    def task(db: Any) -> Any:
        users.check_name(body.name)
        if db.execute("SELECT 1 FROM users WHERE name = ?", (body.name,)).fetchone():
            raise InvalidRequest(_t("user {name!r} exists: change them instead"),
                                 name=body.name)
        return users.add_user(db, body.name, body.role, body.password)
    return svc.writer.call(task)


@router.put("/users/{name}", dependencies=[allow()], response_model=m.User,
            summary="Change a user's role and/or password")
def change_user(name: str, body: m.UserChange, svc: Services = Depends(services)) -> Any:
    return svc.writer.call(lambda db: users.update_user(
        db, name, role=body.role or None, password=body.password or None))


@router.get("/tokens", dependencies=[allow()], response_model=list[m.Token],
            summary="API tokens: name, user, role, created (never the tokens themselves)")
def list_tokens(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return tokens.list_tokens(db)


@router.post("/tokens", dependencies=[allow()], response_model=m.TokenCreated,
             status_code=201,
             summary="Create (or replace) a token; the answer shows it, this once")
def create_token(body: m.TokenCreate, svc: Services = Depends(services)) -> Any:
    def task(db: Any) -> Any:
        token = tokens.create_token(db, body.name, body.role or None)
        row = next(t for t in tokens.list_tokens(db) if t["name"] == body.name)
        return {**row, "token": token}
    return svc.writer.call(task)


@router.delete("/tokens/{name}", dependencies=[allow()], response_model=m.Token,
               summary="Revoke a token: refused from now on")
def revoke_token(name: str, svc: Services = Depends(services)) -> Any:
    def task(db: Any) -> Any:
        row = next((t for t in tokens.list_tokens(db) if t["name"] == name), None)
        if row is None or not tokens.revoke_token(db, name):
            raise NotFound(_t("no token {name!r}"), name=name)
        return row
    return svc.writer.call(task)


@router.get("/audit", dependencies=[allow()], response_model=list[m.AuditEntry],
            summary="State-changing requests, newest first: who, what, when, from where")
def audit_log(user: str | None = None,
              since: float | None = Query(None, description="Unix time"),
              limit: int = Query(200, ge=1, le=10_000),
              pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return audit.list_entries(db, user=user, since=since, limit=limit)
