"""The desk camera's part of the wire contract: events, commands, upload paths.

Spelled here once and used by both the controller (``controller.cameras``) and
the node (``camera_node``). How footage is chained and signed is
:mod:`wire.footage`.

Holds travel as commands (durable on the controller until they expire, and
on the camera once received); what the camera does with them comes back as
durable events, so neither side loses a hold across an outage.
"""

from __future__ import annotations

#: Event after each segment: the chain head, so a deleted or rebuilt chain is caught.
#: ``{"seq", "chain", "sha256", "start", "end"}`` (times: Unix seconds).
EVENT_FOOTAGE_HEAD = "footage_head"

#: Event at start and whenever it changes: the camera's signing key.
#: ``{"public_key": hex}`` (Ed25519, raw 32 bytes as hex).
EVENT_CAMERA_KEY = "camera_key"

#: Event when a hold changes on the camera: ``{"hold", "state", "start", "end",
#: "expires", "segments", "bytes", "reason"?}``; ``state`` is one of HOLD_STATES.
EVENT_HOLD_STATE = "hold_state"

#: Event as a clip upload goes: ``{"hold", "state", "sent", "total", "reason"?}``;
#: ``state`` is one of CLIP_STATES (the controller's own verification decides
#: ``verified``).
EVENT_CLIP_STATE = "clip_state"

#: Commands a camera node handles.
#: ``hold``: ``{"hold": id, "start": unix s, "end": unix s, "expires": unix s,
#: "reason": text}``: keep [start, end) until ``expires`` (idempotent by id).
CMD_HOLD = "hold"
#: ``release``: ``{"hold": id}``: the footage may go with retention again.
CMD_RELEASE = "release"
#: ``clip``: ``{"hold": id}``: upload the hold's segments and manifest.
CMD_CLIP = "clip"
CMD_STATUS = "status"
COMMANDS = (CMD_HOLD, CMD_RELEASE, CMD_CLIP, CMD_STATUS)

#: A hold on the camera: ``waiting`` (its end is still being recorded), ``held``
#: (every segment it covers is kept), ``released``, ``expired``, ``missing`` (the
#: footage was already gone when the hold arrived).
HOLD_WAITING, HOLD_HELD, HOLD_RELEASED, HOLD_EXPIRED, HOLD_MISSING = (
    "waiting", "held", "released", "expired", "missing")
HOLD_STATES = (HOLD_WAITING, HOLD_HELD, HOLD_RELEASED, HOLD_EXPIRED, HOLD_MISSING)

#: A clip upload as the camera sees it.
CLIP_UPLOADING, CLIP_UPLOADED, CLIP_FAILED = "uploading", "uploaded", "failed"
CLIP_STATES = (CLIP_UPLOADING, CLIP_UPLOADED, CLIP_FAILED)

#: Upload routes on the controller (device credentials, HTTP Basic over HTTPS).
#: GET answers ``{"manifest": bool, "segments": {seq: bytes received}}``;
#: PUT manifest: the clip's manifest lines (JSON Lines) with the public key in
#: the ``X-Camera-Key`` header; PUT a segment: its bytes, resumable with
#: ``Content-Range: bytes first-last/total``; POST done: verify and keep.
CLIP_UPLOAD_PATH = "/api/v1/camera/uploads/{hold}"
CLIP_MANIFEST_PATH = "/api/v1/camera/uploads/{hold}/manifest"
CLIP_SEGMENT_PATH = "/api/v1/camera/uploads/{hold}/segments/{seq}"
CLIP_DONE_PATH = "/api/v1/camera/uploads/{hold}/done"

#: Footage kept by a hold before the rating, and after it (the issue's defaults).
HOLD_BEFORE_S = 600.0
HOLD_AFTER_S = 60.0
#: A hold lasts this long unless released or extended.
HOLD_DAYS = 90
