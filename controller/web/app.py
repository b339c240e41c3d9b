"""The app factory: the controller's HTTP API built from the services it is given.

Routers import domain services, never the reverse. Interactive docs are at
``/api/docs`` and the OpenAPI document at ``/api/v1/openapi.json``, both
generated from the routes' typed models.
"""

from __future__ import annotations

import pathlib

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from controller.web import errors
from controller.web.auth import forbidden_message, require_token
from controller.web.console import admin as console_admin
from controller.web.console import camera as console_camera
from controller.web.console import leader as console_leader
from controller.web.console import operator
from controller.web.console import pages as console
from controller.web.console import roster as console_roster
from controller.web.console import technician as console_technician
from controller.web.deps import Services
from controller.web.gate import Audit, Authenticate, Gate
from controller.web.routers import (
    access,
    broadcasts,
    cameras,
    documents,
    fleet,
    ratings,
    roster,
    system,
)

VERSION = "0.2.0"
TITLE = "thanthien controller API"
STATIC = pathlib.Path(__file__).resolve().parent / "static"
SWAGGER = "/static/vendor/swagger-ui"

#: Every router, in the order their routes are matched.
ROUTERS = (system.public, fleet.router, fleet.public, ratings.router, roster.router,
           roster.public, broadcasts.router, broadcasts.public, access.router, access.public,
           documents.router, cameras.router, cameras.public, operator.router,
           console.router, console.public, console_technician.router, console_leader.router,
           console_admin.router, console_roster.router, console_camera.router)


def create_app(services: Services, authenticate: Authenticate, *, audit: Audit | None = None,
               body_timeout: float = 30.0, send_timeout: float = 60.0) -> FastAPI:
    """The API over ``services``; ``authenticate`` checks bearer headers (see web.auth),
    ``audit`` records each state-changing request."""
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json",
                  description="The commune's device controller: devices, ratings, roster, "
                              "broadcasts. Errors are `{\"error\": \"what was wrong\"}`; "
                              "with `Accept-Language: vi`, in Vietnamese where translated, "
                              "the English beside it as `error_en`.")
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.add_api_route("/api/docs", _docs, include_in_schema=False)
    app.state.services = services
    app.state.authenticate = authenticate
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    routes = [route for router in ROUTERS for route in router.routes]
    app.add_middleware(Gate, routes=routes, token_dependency=require_token,
                       authenticate=authenticate, forbidden=forbidden_message, audit=audit,
                       body_timeout=body_timeout, send_timeout=send_timeout,
                       error_body=errors.gate_body)
    return app


def _docs() -> HTMLResponse:
    """Swagger UI from the controller's own copy (``make setup``): no CDN, so the docs
    work on an office network with no Internet."""
    return get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title=f"{TITLE} — docs",
                               swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")
