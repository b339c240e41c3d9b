"""The desk camera role on the node runtime: recording, holds, clips, what it reports.

:class:`Camera` attaches to a :class:`node_runtime.node.Node`. The recorder
(:mod:`camera_node.recorder`) records whatever happens; this class

- reports each segment's chain head as a durable event (``footage_head``) and
  its signing key (``camera_key``), so the controller catches a deleted or
  rebuilt chain;
- keeps holds (:mod:`camera_node.holds`) that retention must respect, and
  reports each hold's state as it changes (``hold_state``): ``waiting`` while
  its end is still being recorded, then ``held`` or ``missing``;
- uploads a hold's clip when asked (:mod:`camera_node.uploads`), one at a time,
  reporting progress (``clip_state``);
- adds its recording state to telemetry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from camera_node.holds import ENDED, Holds
from camera_node.uploads import ClipUploader
from wire.camera import (
    CLIP_FAILED,
    CLIP_UPLOADED,
    CLIP_UPLOADING,
    CMD_CLIP,
    CMD_HOLD,
    CMD_RELEASE,
    CMD_STATUS,
    EVENT_CAMERA_KEY,
    EVENT_CLIP_STATE,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
    HOLD_DAYS,
    HOLD_EXPIRED,
    HOLD_HELD,
    HOLD_MISSING,
    HOLD_WAITING,
)

log = logging.getLogger(__name__)

#: How often holds are looked at (expiry, a waiting hold's end recorded).
CHECK_S = 5.0
#: A hold covers at most this long (the controller bounds holds to 4 h).
MAX_HOLD_S = 6 * 3600.0
#: Ended holds are forgotten this long after they ended.
FORGET_S = 30 * 86400.0


class Camera:
    """Attached to a node; ``start`` then ``close``."""

    def __init__(self, node: Any, *, recorder: Any, store: Any, holds: Holds,
                 uploader: ClipUploader, public_key: str, segment_s: float = 60.0,
                 hold_days: float = HOLD_DAYS,
                 emit: Callable[[str, dict[str, Any]], Any] | None = None,
                 clock: Callable[[], float] = time.time):
        self.node, self.recorder, self.store = node, recorder, store
        self.holds, self.uploader, self.public_key = holds, uploader, public_key
        self.segment_s, self.hold_days = segment_s, hold_days
        self._emit = emit or node.emit
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._clip_wake = threading.Event()
        self._lock = threading.Lock()
        self._clips: list[str] = []  # holds whose clip is asked for, in order
        self._uploading: dict[str, Any] | None = None
        self._threads = [threading.Thread(target=self._watch_holds, name="holds", daemon=True),
                         threading.Thread(target=self._upload_clips, name="clips", daemon=True)]
        node.telemetry_fields.append(self.telemetry)
        for name, handler in ((CMD_HOLD, self.cmd_hold), (CMD_RELEASE, self.cmd_release),
                              (CMD_CLIP, self.cmd_clip), (CMD_STATUS, self.status)):
            node.command(name, handler)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._emit(EVENT_CAMERA_KEY, {"public_key": self.public_key})
        self.recorder.start()
        for t in self._threads:
            t.start()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._clip_wake.set()
        self.uploader.close()
        self.recorder.close()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=10)
        self.holds.close()

    # -- the recorder's callback ----------------------------------------------------

    def on_segment(self, segment: Any) -> None:
        """Each new segment: its chain head to the controller, holds looked at again."""
        self._emit(EVENT_FOOTAGE_HEAD, {"seq": segment.seq, "chain": segment.chain,
                                        "sha256": segment.sha256, "start": segment.start,
                                        "end": segment.end})
        self._wake.set()

    def protects(self, segment: Any) -> bool:
        """Retention's question: is this segment held?"""
        return self.holds.protects(segment.start, segment.end)

    # -- commands -------------------------------------------------------------------

    def cmd_hold(self, args: dict[str, Any]) -> dict[str, Any]:
        hold_id = _text(args, "hold")
        start, end = _seconds(args, "start"), _seconds(args, "end")
        if not start < end <= start + MAX_HOLD_S:
            raise ValueError(f"hold {hold_id}: start {start} and end {end}: expected "
                             f"start < end, at most {MAX_HOLD_S / 3600:.0f} h apart")
        expires = (_seconds(args, "expires") if args.get("expires") is not None
                   else self.clock() + self.hold_days * 86400)
        reason = str(args.get("reason") or "")[:200]
        hold, new = self.holds.add(hold_id, start, end, expires, reason,
                                   self._state_of(start, end))
        if new:
            log.info("hold %s: %s to %s (%s)", hold_id, time.ctime(start), time.ctime(end),
                     reason)
        self._refresh(hold, report=True)
        return self._summary(self.holds.get(hold_id) or hold)

    def cmd_release(self, args: dict[str, Any]) -> dict[str, Any]:
        hold_id = _text(args, "hold")
        hold = self.holds.release(hold_id)
        if hold is None:
            raise ValueError(f"no hold {hold_id!r} on this camera")
        self._report(hold)
        return self._summary(hold)

    def cmd_clip(self, args: dict[str, Any]) -> dict[str, Any]:
        hold_id = _text(args, "hold")
        hold = self.holds.get(hold_id)
        if hold is None or hold["state"] in ENDED:
            raise ValueError(f"no active hold {hold_id!r} on this camera")
        reason = self.uploader.refusal()
        if reason:
            raise ValueError(reason)
        with self._lock:
            if hold_id not in self._clips:
                if len(self._clips) >= 20:
                    raise ValueError("20 clips already waiting to upload: try again later")
                self._clips.append(hold_id)
        self._clip_wake.set()
        return {"hold": hold_id, "queued": True, "segments": hold["segments"],
                "bytes": hold["bytes"]}

    def status(self, args: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            clips = {"uploading": self._uploading, "waiting": list(self._clips)}
        return {**self.recorder.status(), "holds": [self._summary(h)
                                                     for h in self.holds.active()],
                "clips": clips}

    def telemetry(self) -> dict[str, Any]:
        """Telemetry fields: recording or not and why, footage on disk, holds."""
        status = self.recorder.status()
        return {"camera": {**status, "holds": len(self.holds.active())}}

    # -- holds ----------------------------------------------------------------------

    def _state_of(self, start: float, end: float) -> str:
        if self.clock() < end + self.segment_s:
            return HOLD_WAITING  # its end is still being recorded
        return HOLD_HELD if self.store.between(start, end) else HOLD_MISSING

    def _refresh(self, hold: dict[str, Any], *, report: bool = False) -> None:
        """Count what the hold covers now; report the hold when that changed."""
        if hold["state"] in ENDED:
            return
        if hold["expires"] <= self.clock():
            state = HOLD_EXPIRED
        elif hold["state"] == HOLD_MISSING:
            state = HOLD_MISSING  # footage gone before the hold came: it stays gone
        else:
            state = self._state_of(hold["start"], hold["end"])
        covered = self.store.between(hold["start"], hold["end"])
        changed = self.holds.update(hold["id"], state=state, segments=len(covered),
                                    size=sum(s.size for s in covered))
        if changed or report:
            self._report(self.holds.get(hold["id"]) or hold)

    def _report(self, hold: dict[str, Any]) -> None:
        self._emit(EVENT_HOLD_STATE, self._summary(hold))

    @staticmethod
    def _summary(hold: dict[str, Any]) -> dict[str, Any]:
        return {"hold": hold["id"], "state": hold["state"], "start": hold["start"],
                "end": hold["end"], "expires": hold["expires"], "segments": hold["segments"],
                "bytes": hold["bytes"], "reason": hold["reason"]}

    def _watch_holds(self) -> None:
        while not self._stop.is_set():
            try:
                for hold in self.holds.active():
                    if hold["state"] == HOLD_WAITING or hold["expires"] <= self.clock():
                        self._refresh(hold)
                self.holds.forget_ended(self.clock() - FORGET_S)
            except Exception:
                log.exception("checking holds failed")
            self._wake.wait(CHECK_S)
            self._wake.clear()

    # -- clips ----------------------------------------------------------------------

    def _upload_clips(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                hold_id = self._clips[0] if self._clips else None
            if hold_id is None:
                self._clip_wake.wait(CHECK_S)
                self._clip_wake.clear()
                continue
            self._upload(hold_id)
            with self._lock:
                if self._clips and self._clips[0] == hold_id:
                    self._clips.pop(0)
                self._uploading = None

    def _upload(self, hold_id: str) -> None:
        hold = self.holds.get(hold_id)
        if hold is None or hold["state"] in ENDED:
            return
        segments = self.store.between(hold["start"], hold["end"])
        if not segments:
            self._clip_state(hold_id, CLIP_FAILED, 0, 0, "no footage held for this hold")
            return
        entries = self.store.entries(segments)
        files = {s.seq: s.path for s in segments}
        total = sum(s.size for s in segments)
        last_report = [0.0]

        def progress(sent: int, total: int) -> None:
            with self._lock:
                self._uploading = {"hold": hold_id, "sent": sent, "total": total}
            if time.monotonic() - last_report[0] >= 10:  # progress now and then, not per chunk
                last_report[0] = time.monotonic()
                self._clip_state(hold_id, CLIP_UPLOADING, sent, total)

        self._clip_state(hold_id, CLIP_UPLOADING, 0, total)
        try:
            answer = self.uploader.upload(hold_id, entries, files, self.public_key, progress)
        except Exception as exc:  # a refusal, a cut that outlasted the retries, a bad file
            if self._stop.is_set():
                return  # asked again after the restart: resumes where it stopped
            log.warning("clip %s: %s", hold_id, exc)
            self._clip_state(hold_id, CLIP_FAILED, 0, total, str(exc))
            return
        log.info("clip %s uploaded: %s", hold_id, answer.get("state"))
        self._clip_state(hold_id, CLIP_UPLOADED, total, total, None,
                         verified=answer.get("state"))

    def _clip_state(self, hold_id: str, state: str, sent: int, total: int,
                    reason: str | None = None, **extra: Any) -> None:
        data: dict[str, Any] = {"hold": hold_id, "state": state, "sent": sent, "total": total,
                                **extra}
        if reason:
            data["reason"] = reason[:500]
        self._emit(EVENT_CLIP_STATE, data)


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise ValueError(f"'{key}' {value!r}: expected an id of 1-64 characters")
    return value


def _seconds(args: dict[str, Any], key: str) -> float:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 < value < 2**33):
        raise ValueError(f"'{key}' {value!r}: expected a time in Unix seconds")
    return float(value)
