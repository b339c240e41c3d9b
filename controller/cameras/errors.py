"""The cameras' errors: each also one of the controller's (and so a builtin)."""

from __future__ import annotations

from typing import Any

from controller.errors import Busy, InvalidRequest


class QuotaExceeded(InvalidRequest):
    """The clips would need more room than the controller keeps for them."""


class RangeMismatch(InvalidRequest):
    """A segment's upload does not start where the controller stopped receiving; the
    camera resumes from :attr:`received`."""

    def __init__(self, *args: object, received: int, **params: Any):
        super().__init__(*args, received=received, **params)
        self.received = received


class UploadBusy(Busy):
    """The same segment is being received on another connection."""

    retry_after_s = 5
