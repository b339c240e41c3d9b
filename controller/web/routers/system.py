"""The service itself: health (public, for monitors and systemd checks)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from controller.web.deps import Services, services
from controller.web.models.fleet import Health

public = APIRouter(prefix="/api/v1", tags=["system"])


@public.get("/health", response_model=Health, summary="Health: ok or degraded, with reasons",
            responses={503: {"model": Health, "description": "degraded"}})
def health(svc: Services = Depends(services)) -> Any:
    """``ok``, or ``degraded`` with the reasons: writes failing (disk full), the broker
    unreachable, ingestion behind, or a corrupt database set aside at start."""
    state = svc.health()
    return JSONResponse(Health.model_validate(state).model_dump(),
                        status_code=200 if state["status"] == "ok" else 503)
