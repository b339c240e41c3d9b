"""The HTTP JSON API (``/api/v1``), declared once for serving and for OpenAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller import (
    alerts,
    cases,
    commands,
    desired_config,
    rating_stats,
    ratings,
    registry,
    roster,
    screenshots,
    speaker_api,
)
from controller.auth import check_token
from controller.http import Request, Router

if TYPE_CHECKING:
    from controller.service import Controller

VERSION = "0.1.0"


def build_router(ctl: Controller) -> Router:
    """Every endpoint of the API, bound to one controller."""
    router = Router(lambda header: check_token(ctl.reader(), header),
                    "thanthien controller API", VERSION)

    @router.add("GET", "/api/v1/health", "Liveness, counters and rejections", public=True)
    def health(req: Request) -> dict[str, Any]:
        return {"status": "ok", "mqtt_connected": ctl.hub.session.is_connected.is_set(),
                "schema_version": ctl.schema_version, **ctl.metrics.snapshot()}

    @router.add("GET", "/api/v1/openapi.json", "This API's OpenAPI description", public=True)
    def openapi(req: Request) -> dict[str, Any]:
        return router.openapi()

    @router.add("GET", "/api/v1/devices", "Devices with online state and latest telemetry",
                query=("status",))
    def devices(req: Request) -> list[dict[str, Any]]:
        return registry.list_devices(ctl.reader(), status=req.query.get("status"))

    @router.add("POST", "/api/v1/devices", "Register (approve) a device", status=201)
    def add_device(req: Request) -> dict[str, Any]:
        body = req.json_object()
        return ctl.registry.add(body.get("id", ""), body.get("role", ""),
                                label=body.get("label"), hamlet=body.get("hamlet"))

    @router.add("GET", "/api/v1/devices/{id}", "One device")
    def device(req: Request) -> dict[str, Any]:
        return registry.get_device(ctl.reader(), req.params["id"])

    @router.add("POST", "/api/v1/devices/{id}/approve", "Approve a pending device")
    def approve(req: Request) -> dict[str, Any]:
        return ctl.registry.approve(req.params["id"])

    @router.add("GET", "/api/v1/devices/{id}/telemetry", "Recent telemetry, newest first",
                query=("limit",))
    def telemetry(req: Request) -> list[dict[str, Any]]:
        registry.get_device(ctl.reader(), req.params["id"])
        return registry.telemetry_history(ctl.reader(), req.params["id"],
                                          req.integer("limit", 100))

    @router.add("POST", "/api/v1/devices/{id}/commands",
                "Send a command: {name, args, ttl_s}", status=201)
    def send_command(req: Request) -> dict[str, Any]:
        body = req.json_object()
        return ctl.commands.create(req.params["id"], body.get("name", ""), body.get("args"),
                                   body.get("ttl_s", 300))

    @router.add("GET", "/api/v1/devices/{id}/commands", "Commands sent to a device")
    def device_commands(req: Request) -> list[dict[str, Any]]:
        return commands.list_commands(ctl.reader(), req.params["id"])

    @router.add("GET", "/api/v1/commands/{id}", "One command and its result")
    def command(req: Request) -> dict[str, Any]:
        return commands.get_command(ctl.reader(), req.params["id"])

    @router.add("GET", "/api/v1/devices/{id}/config", "Desired and reported config")
    def get_config(req: Request) -> dict[str, Any]:
        return desired_config.get_desired(ctl.reader(), req.params["id"])

    @router.add("PUT", "/api/v1/devices/{id}/config", "Set the desired config: {config}")
    def put_config(req: Request) -> dict[str, Any]:
        body = req.json_object()
        version = ctl.desired_config.set(req.params["id"], body.get("config"))
        return {"version": version}

    # Before /ratings/{...}-like routes: the stats path must not be shadowed.
    rating_stats.add_routes(router, ctl)

    @router.add("GET", "/api/v1/ratings", "Citizens' ratings, newest first",
                query=("since", "until", "device", "desk", "officer", "include_misuse",
                       "limit"))
    def list_ratings(req: Request) -> list[dict[str, Any]]:
        return ratings.list_ratings(
            ctl.reader(), since=req.query.get("since"), until=req.query.get("until"),
            device=req.query.get("device"), desk=req.query.get("desk"),
            officer=req.query.get("officer"), include_misuse=req.flag("include_misuse"),
            limit=req.integer("limit", 1000, hi=100_000))

    for module in (roster, alerts, cases, screenshots, speaker_api):
        module.add_routes(router, ctl)
    return router
