"""What route handlers are given: the services the app was built with, a read connection."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Path, Request

from controller.access.sessions import Sessions
from controller.broadcasts.audio_library import AudioLibrary
from controller.broadcasts.items import Broadcasts
from controller.cameras import Cameras
from controller.db.connection import ReaderPool
from controller.db.writer import Writer
from controller.fleet.bundles import Bundles
from controller.fleet.cards import Cards
from controller.fleet.commands import Commands
from controller.fleet.desired_config import DesiredConfig
from controller.fleet.device_auth import DeviceAuth
from controller.fleet.enrolment import Enrolment
from controller.fleet.registry import Registry
from controller.fleet.revocation import Revocation
from controller.ratings.alerts import Alerts
from controller.ratings.roster import Roster
from controller.ratings.screenshots import Screenshots
from wire.messages import INT64_MAX

#: A row id in a path: SQLite's integers are 64-bit, anything past them a clear 422.
RowIdPath = Annotated[int, Path(ge=1, le=INT64_MAX, description="the row's id")]


@dataclasses.dataclass
class Services:
    """The domain services the web app calls; each built with its own dependencies."""

    readers: ReaderPool
    writer: Writer
    registry: Registry
    commands: Commands
    desired_config: DesiredConfig
    device_auth: DeviceAuth
    alerts: Alerts
    roster: Roster
    screenshots: Screenshots
    audio_library: AudioLibrary
    broadcasts: Broadcasts
    sessions: Sessions
    revocation: Revocation
    #: ``health() -> dict``: the service's state for ``/api/v1/health``.
    health: Any
    #: The commune's public information (controller.ratings.public_info.PublicInfo).
    public_info: Any = None
    #: The desk cameras' holds and clips.
    cameras: Cameras | None = None
    #: Devices provisioned elsewhere: their cards, and enrolment by claim.
    cards: Cards | None = None
    enrolment: Enrolment | None = None
    bundles: Bundles | None = None


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def readers(request: Request) -> ReaderPool:
    """The pool of read connections. Handlers borrow one in their own thread
    (``with pool.connection() as db``) and give it back before they return: a
    connection held across threads by a yield-dependency would wait for a worker
    thread to be returned, while every worker waits for a connection."""
    return services(request).readers
