"""The cameras' service: holds and clips as people and cameras ask for them.

Commands to cameras are stored in the same transaction as the hold or clip they
carry, and published only once it committed: a writer batch hook sends what the
batch stored (a rating hook runs inside the writer's transaction, where waiting
for the writer would deadlock). A camera offline gets them at its birth; they
wait up to :data:`controller.fleet.commands.MAX_TTL_S`.

Clips are verified one at a time on a thread of their own (hashing, remuxing and
archiving a clip reads it three times); ``done`` waits for the result up to
``verify_wait_s`` and otherwise answers ``received``.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlite_utils

from controller.access import audit
from controller.cameras import clips, desks, export, heads, holds, keys
from controller.cameras.errors import UploadBusy
from controller.cameras.uploads import (
    ClipFolder,
    SegmentUpload,
    check_key_header,
    parse_manifest,
)
from controller.db.connection import ReaderPool
from controller.db.writer import Writer
from controller.errors import Forbidden, InvalidRequest, NotFound, _t
from controller.fleet.commands import MAX_TTL_S, Commands
from controller.ratings.alerts import Alerts
from wire.camera import CMD_CLIP, CMD_HOLD, CMD_RELEASE, HOLD_AFTER_S, HOLD_BEFORE_S, HOLD_DAYS
from wire.footage import FootageError, key_fingerprint, verify
from wire.messages import parse_ts

log = logging.getLogger(__name__)

#: The reason an automatic hold carries (the console says it in the reader's language).
RATING_REASON = "dissatisfied rating"
#: A rewritten chain is alerted at most once a day per camera.
CHAIN_ALERT_S = 86400.0


class Cameras:
    """Holds, clips, keys, chain heads and desks of the desk cameras."""

    def __init__(self, writer: Writer, readers: ReaderPool, commands: Commands, alerts: Alerts,
                 clips_dir: str | pathlib.Path, *, quota_bytes: int = clips.QUOTA_BYTES,
                 hold_before_s: float = HOLD_BEFORE_S, hold_after_s: float = HOLD_AFTER_S,
                 hold_days: float = HOLD_DAYS, verify_wait_s: float = 20.0):
        self.writer, self.readers, self.commands, self.alerts = writer, readers, commands, alerts
        self.clips_dir = pathlib.Path(clips_dir)
        self.quota_bytes = quota_bytes
        self.hold_before_s, self.hold_after_s, self.hold_days = (
            hold_before_s, hold_after_s, hold_days)
        self.verify_wait_s = verify_wait_s
        self._pending: list[tuple[str, dict[str, Any]]] = []  # writer thread only
        writer.batch_hooks.append(self._flush)
        self._lock = threading.Lock()
        self._receiving: set[tuple[str, int]] = set()
        self._verified: dict[str, threading.Event] = {}
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._verify_loop, name="clip-verifier",
                                        daemon=True)
        self._closed = False

    def start(self) -> None:
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self._worker.start()
        with self.readers.connection() as db:  # received before a restart: verify them now
            for clip in clips.list_clips(db, state=clips.RECEIVED):
                self._queue.put(clip["hold"])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout=30)

    # -- commands, published after commit ----------------------------------------------

    def _command(self, db: sqlite_utils.Database, camera: str, name: str,
                 args: dict[str, Any]) -> None:
        body = self.commands.add(db, camera, name, args, ttl_s=MAX_TTL_S)
        self._pending.append((camera, body))

    def _flush(self, committed: bool) -> None:
        """Batch hook: send the commands the batch stored (only those still stored: a part
        of a batch undone took its commands with it)."""
        pending, self._pending = self._pending, []
        if not committed or not pending:
            return
        ids = [body["id"] for _, body in pending]
        stored = {r[0] for r in self.writer.db.execute(
            f"SELECT id FROM commands WHERE id IN ({', '.join('?' * len(ids))})", ids)}
        for camera, body in pending:
            if body["id"] in stored:
                try:
                    self.commands.send(camera, body)
                except Exception:
                    log.exception("sending %s to camera %s failed", body["name"], camera)

    # -- holds ---------------------------------------------------------------------------

    def hold_for_rating(self, db: sqlite_utils.Database, rating: dict[str, Any]) -> None:
        """Rating hook: a dissatisfied rating (not misuse) at a desk holds each of its
        cameras' footage from ``hold_before_s`` before it to ``hold_after_s`` after (its
        time by the kiosk's clock if synchronised, else when it arrived)."""
        if not rating["dissatisfied"] or rating["misuse"] or not rating["desk"]:
            return
        cameras = desks.cameras_at(db, rating["desk"])
        if not cameras:
            return
        event = db.execute("SELECT clock_synced, received FROM events WHERE id = ?",
                           (rating["id"],)).fetchone()
        at = parse_ts(rating["ts"]).timestamp() if event is None or event[0] else event[1]
        for camera in cameras:
            self._hold(db, camera, rating["desk"], at - self.hold_before_s,
                       at + self.hold_after_s, RATING_REASON, self.hold_days,
                       rating_id=rating["id"])

    def _hold(self, db: sqlite_utils.Database, camera: str, desk: str | None, start: float,
              end: float, reason: str, days: float, *, rating_id: str | None = None,
              user: str | None = None) -> dict[str, Any]:
        expires = time.time() + days * 86400
        hold = holds.insert_hold(db, camera=camera, desk=desk, start=start, end=end,
                                 reason=reason, expires=expires, rating_id=rating_id,
                                 created_by=user)
        self._command(db, camera, CMD_HOLD, {"hold": hold["id"], "start": start, "end": end,
                                             "expires": expires, "reason": reason})
        return hold

    def create_holds(self, body: dict[str, Any], user: str | None) -> list[dict[str, Any]]:
        """A hold by hand on one camera (``camera``) or every camera of a desk (``desk``):
        ``start``, ``end``, ``reason``, ``days`` (how long it is kept)."""
        camera, desk = body.get("camera"), body.get("desk")
        if (camera is None) == (desk is None):
            raise InvalidRequest(_t("give either 'camera' or 'desk', not both nor neither"))
        start = holds.parse_time(body.get("start"), "start")
        end = holds.parse_time(body.get("end"), "end")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidRequest(_t("a hold needs a 'reason' (text)"))
        days = body.get("days", self.hold_days)
        if isinstance(days, bool) or not isinstance(days, int | float):
            raise InvalidRequest(_t("'days' {days!r}: expected a number"), days=days)

        def task(db: sqlite_utils.Database) -> list[dict[str, Any]]:
            targets = self._targets(db, camera, desk)
            holds.check_manual(db, start, end, days, len(targets), time.time())
            return [self._hold(db, c, d, start, end, reason.strip(), days, user=user)
                    for c, d in targets]

        made: list[dict[str, Any]] = self.writer.call(task)
        return made

    @staticmethod
    def _targets(db: sqlite_utils.Database, camera: Any,
                 desk: Any) -> list[tuple[str, str | None]]:
        if desk is not None:
            found = desks.cameras_at(db, str(desk))
            if not found:
                raise InvalidRequest(_t("desk {desk!r} has no camera"), desk=desk)
            return [(c, str(desk)) for c in found]
        row = db.execute("SELECT role FROM devices WHERE id = ?", (camera,)).fetchone()
        if row is None or row[0] != "camera":
            raise InvalidRequest(_t("camera {camera!r}: no such camera"), camera=camera)
        return [(str(camera), desks.desk_of(db, str(camera)))]

    def release(self, hold_id: str) -> dict[str, Any]:
        """Release a hold: the camera may let its footage go with retention again."""
        def task(db: sqlite_utils.Database) -> dict[str, Any]:
            hold = holds.get_hold(db, hold_id)
            if hold["state"] not in holds.ACTIVE:
                return hold
            self._command(db, hold["camera"], CMD_RELEASE, {"hold": hold_id})
            return holds.release(db, hold_id)

        released: dict[str, Any] = self.writer.call(task)
        return released

    # -- desks and keys ------------------------------------------------------------------

    def set_desk_cameras(self, desk: str, cameras: list[str]) -> list[str]:
        found: list[str] = self.writer.call(lambda db: desks.set_cameras(db, desk, cameras))
        return found

    def move_camera(self, camera: str, desk: str | None) -> None:
        """``camera`` now watches ``desk`` (None: no desk), beside the desk's other cameras."""
        def task(db: sqlite_utils.Database) -> None:
            if desk is not None:
                desks.set_cameras(db, desk, [*desks.cameras_at(db, desk), camera])
                return
            old = desks.desk_of(db, camera)
            if old is not None:
                desks.set_cameras(db, old, [c for c in desks.cameras_at(db, old) if c != camera])

        self.writer.call(task)

    def accept_key(self, camera: str, public_key: str, user: str | None) -> dict[str, Any]:
        accepted: dict[str, Any] = self.writer.call(
            lambda db: keys.accept_key(db, camera, public_key, user))
        return accepted

    # -- ingest handlers (writer thread) ---------------------------------------------------

    def store_key(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        """``camera_key``: the first key is pinned; another is recorded and alerted."""
        camera = event["device"]
        public_key = keys.check_key(event["data"].get("public_key"))
        if keys.record_key(db, camera, public_key) == keys.NEW:
            pinned = keys.pinned_key(db, camera) or ""
            self.alerts.raise_alert(
                db, "camera_key", camera,
                f"camera {camera} reported a new signing key {key_fingerprint(public_key)}; "
                f"clips are verified against the pinned key {key_fingerprint(pinned)} until "
                "a technician accepts the new one")

    def store_head(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        """``footage_head``: kept; a seq reported again with another chain is alerted."""
        camera = event["device"]
        problem = heads.record_head(db, camera, event["data"])
        if problem and not db.execute(
                "SELECT 1 FROM alerts WHERE kind = 'footage_chain' AND desk = ?"
                " AND created > ? AND detail LIKE ?",
                (camera, time.time() - CHAIN_ALERT_S, f"%{heads.REWRITTEN}%")).fetchone():
            self.alerts.raise_alert(db, "footage_chain", camera, problem)

    def store_hold_state(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        holds.apply_state(db, event["device"], event["data"])

    def store_clip_state(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        clips.apply_camera_state(db, event["device"], event["data"])

    # -- housekeeping ----------------------------------------------------------------------

    def sweep(self, now: float | None = None, gap_grace_s: float = heads.GAP_GRACE_S) -> None:
        """Hourly: alert missing chain heads, forget old ones, expire holds, and remove the
        clips of expired holds."""
        def task(db: sqlite_utils.Database) -> list[str]:
            for camera, detail in heads.find_gaps(db, now, gap_grace_s).items():
                self.alerts.raise_alert(db, "footage_chain", camera, detail)
            gone = []
            for hold_id in holds.expire(db, now):
                clip = clips.get_clip(db, hold_id)
                clips.update(db, hold_id, state=clips.DELETED, bytes=0, video=0)
                gone.append(clip["path"])
            heads.prune(db, now)
            return gone

        for folder in self.writer.call(task):
            self._folder(folder).remove()

    # -- clips, for leaders ----------------------------------------------------------------

    def request_clip(self, hold_id: str, user: str | None) -> dict[str, Any]:
        """Ask the hold's camera to upload its footage; refused beyond the quota."""
        def task(db: sqlite_utils.Database) -> tuple[dict[str, Any], dict[str, Any] | None]:
            hold = holds.get_hold(db, hold_id)
            replaced = clips.request(db, hold, user, self.quota_bytes)
            self._command(db, hold["camera"], CMD_CLIP, {"hold": hold_id})
            return clips.get_clip(db, hold_id), replaced

        clip, replaced = self.writer.call(task)
        if replaced is not None and replaced["path"]:
            self._folder(replaced["path"]).remove()
        return dict(clip)

    def delete_clip(self, hold_id: str) -> dict[str, Any]:
        """Remove a clip's files (the row stays, ``deleted``)."""
        def task(db: sqlite_utils.Database) -> dict[str, Any]:
            clip = clips.get_clip(db, hold_id)
            if clip["state"] == clips.RECEIVED:
                raise InvalidRequest(_t("the clip of hold {id} is being verified"), id=hold_id)
            clips.update(db, hold_id, state=clips.DELETED, bytes=0, video=0)
            return clip

        clip: dict[str, Any] = self.writer.call(task)
        if clip["path"]:
            self._folder(clip["path"]).remove()
        return {**clip, "state": clips.DELETED, "bytes": 0, "video": False}

    def clip_file(self, hold_id: str, what: str) -> pathlib.Path:
        """The path of a verified clip's ``video`` (MP4) or ``archive`` (tar)."""
        with self.readers.connection() as db:
            clip = clips.get_clip(db, hold_id)
        if clip["state"] != clips.VERIFIED or (what == "video" and not clip["video"]):
            raise NotFound(_t("the clip of hold {id} has no {what}: it is {state}"),
                           id=hold_id, what=what, state=clip["state"])
        path = self._folder(clip["path"]).path / (export.VIDEO if what == "video"
                                                  else export.ARCHIVE)
        if not path.exists():
            raise NotFound(_t("the clip of hold {id} has no {what}: it is {state}"),
                           id=hold_id, what=what, state="missing")
        return path

    def record_access(self, entry: dict[str, Any]) -> None:
        """A clip watched or downloaded: in the audit log (who, which clip, when)."""
        self.writer.submit(lambda db: audit.record(db, entry))

    # -- uploads, from the camera ----------------------------------------------------------

    def _folder(self, path: str) -> ClipFolder:
        return ClipFolder(self.clips_dir / path)

    def _open_clip(self, hold_id: str, device: str, *,
                   states: tuple[str, ...] = clips.OPEN) -> tuple[dict[str, Any], ClipFolder]:
        with self.readers.connection() as db:
            clip = clips.find_clip(db, hold_id)
        if clip is None:
            raise NotFound(_t("no clip of hold {hold!r} was asked for"), hold=hold_id)
        if clip["camera"] != device:
            raise Forbidden(_t("hold {hold} is camera {camera}'s, not {device}'s"),
                            hold=hold_id, camera=clip["camera"], device=device)
        if clip["state"] not in states:
            raise InvalidRequest(_t("the clip of hold {hold} is {state}: no upload is taken"),
                                 hold=hold_id, state=clip["state"])
        return clip, self._folder(clip["path"])

    def upload_status(self, hold_id: str, device: str) -> dict[str, Any]:
        """What the controller has of the clip: its manifest, and bytes of each segment
        (all of them once received: a camera whose ``done`` went unanswered asks again)."""
        clip, folder = self._open_clip(hold_id, device, states=(
            *clips.OPEN, clips.RECEIVED, clips.VERIFIED))
        segments = folder.segments()
        if clip["state"] in clips.OPEN:
            received = folder.received(segments)
        else:
            received = {s["seq"]: s["size"] for s in segments}
        return {"manifest": folder.manifest.exists(),
                "segments": {str(seq): n for seq, n in received.items()}}

    def put_manifest(self, hold_id: str, device: str, public_key: str | None,
                     body: bytes) -> dict[str, Any]:
        """The clip's manifest: checked against the hold and the quota, then kept."""
        clip, folder = self._open_clip(hold_id, device)
        key = check_key_header(public_key)
        segments = parse_manifest(body, clip["start"], clip["end"])
        total = sum(s["size"] for s in segments)
        with self.readers.connection() as db:
            clips.check_quota(db, self.quota_bytes, total, besides=hold_id)
        folder.put_manifest(body, key)
        self.writer.call(lambda db: clips.update(
            db, hold_id, state=clips.UPLOADING, total=total, segments=len(segments),
            bytes=folder.size()))
        return {"segments": len(segments), "bytes": total}

    def open_segment(self, hold_id: str, device: str, seq: int,
                     content_range: tuple[int, int, int] | None) -> SegmentUpload:
        """Start receiving segment ``seq``; hand the upload back to :meth:`close_segment`."""
        _, folder = self._open_clip(hold_id, device)
        listed = {s["seq"]: s for s in folder.segments()}
        if not listed:
            raise InvalidRequest(_t("hold {hold}: send the manifest before the segments"),
                                 hold=hold_id)
        if seq not in listed:
            raise NotFound(_t("the manifest of hold {hold} lists no segment {seq}"),
                           hold=hold_id, seq=seq)
        with self._lock:
            if (hold_id, seq) in self._receiving:
                raise UploadBusy(_t("segment {seq} of hold {hold} is being received on "
                                    "another connection"), seq=seq, hold=hold_id)
            self._receiving.add((hold_id, seq))
        try:
            return folder.open_segment(listed[seq], content_range)
        except BaseException:
            with self._lock:
                self._receiving.discard((hold_id, seq))
            raise

    def close_segment(self, hold_id: str, seq: int, upload: SegmentUpload) -> int:
        """Keep what was received (all of it, or up to a cut); the bytes of it so far."""
        try:
            have = upload.close()
        finally:
            with self._lock:
                self._receiving.discard((hold_id, seq))
        size = upload.folder_size()
        self.writer.submit(lambda db: db.execute(
            "UPDATE clips SET state = 'uploading', bytes = ?, updated = ? WHERE hold = ?"
            " AND state IN ('requested', 'uploading')", (size, time.time(), hold_id)))
        return have

    @contextlib.contextmanager
    def _waiting_for(self, hold_id: str) -> Iterator[threading.Event]:
        with self._lock:
            event = self._verified.setdefault(hold_id, threading.Event())
        try:
            yield event
        finally:
            with self._lock:
                if self._verified.get(hold_id) is event and event.is_set():
                    del self._verified[hold_id]

    def done(self, hold_id: str, device: str) -> dict[str, Any]:
        """The camera sent everything: verify (waiting up to ``verify_wait_s``) and answer
        the clip; an incomplete upload fails, naming what is missing."""
        clip, folder = self._open_clip(hold_id, device, states=(*clips.OPEN, clips.RECEIVED,
                                                               clips.VERIFIED, clips.FAILED))
        if clip["state"] in clips.OPEN:
            segments = folder.segments()
            missing = (folder.incomplete(segments) if segments
                       else ["no manifest was received"])
            if missing:
                self.writer.call(lambda db: clips.update(db, hold_id, state=clips.FAILED,
                                                         problems=missing, bytes=folder.size()))
                return self._clip(hold_id)
            size = folder.size()
            with self._waiting_for(hold_id) as event:
                if self.writer.call(lambda db: clips.mark_received(db, hold_id, size)):
                    self._queue.put(hold_id)  # else another request of the camera's did
                event.wait(self.verify_wait_s)
        elif clip["state"] == clips.RECEIVED:
            with self._waiting_for(hold_id) as event:
                event.wait(self.verify_wait_s)
        return self._clip(hold_id)

    def _clip(self, hold_id: str) -> dict[str, Any]:
        with self.readers.connection() as db:
            return clips.get_clip(db, hold_id)

    # -- verification ----------------------------------------------------------------------

    def _verify_loop(self) -> None:
        while (hold_id := self._queue.get()) is not None:
            try:
                self._verify(hold_id)
            except Exception as exc:
                log.exception("verifying clip %s failed", hold_id)
                self._failed(hold_id, f"the controller could not verify it: "
                                      f"{type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    event = self._verified.get(hold_id)
                if event is not None:
                    event.set()

    def _failed(self, hold_id: str, problem: str) -> None:
        with contextlib.suppress(Exception):
            self.writer.call(lambda db: clips.update(db, hold_id, state=clips.FAILED,
                                                     problems=[problem[:500]]))

    def _verify(self, hold_id: str) -> None:
        """Verify a received clip against the pinned key and recorded heads; a verified one
        gets its MP4 and archive (its loose segments then go: the archive holds them)."""
        with self.readers.connection() as db:
            clip = clips.get_clip(db, hold_id)
            hold = holds.get_hold(db, hold_id)
            if clip["state"] != clips.RECEIVED:
                return  # deleted meanwhile
            folder = self._folder(clip["path"])
            segments = sorted(folder.segments(), key=lambda s: s["seq"])
            pinned = keys.pinned_key(db, clip["camera"])
            expected = heads.expected_heads(db, clip["camera"], segments[0]["seq"],
                                            segments[-1]["seq"])
        if pinned is None:
            self._finish(hold_id, clips.FAILED, folder, [
                f"camera {clip['camera']} never reported its signing key: the clip cannot "
                "be checked against a key the controller registered"])
            return
        try:
            result = verify(folder.path, public_key_hex=pinned, expected_heads=expected)
        except (FootageError, OSError) as exc:
            self._finish(hold_id, clips.FAILED, folder, [str(exc)])
            return
        if not result.ok:
            self._finish(hold_id, clips.FAILED, folder, result.problems,
                         segments=result.segments)
            return
        names = [s["name"] for s in segments]
        notes = self._export(hold, folder, names, pinned, result.segments)
        for name in names:
            (folder.path / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                (folder.path / name).parent.rmdir()
        self._finish(hold_id, clips.VERIFIED, folder, notes, segments=result.segments,
                     video=int((folder.path / export.VIDEO).exists()), verified=time.time())

    def _export(self, hold: dict[str, Any], folder: ClipFolder, names: list[str],
                public_key: str, segments: int) -> list[str]:
        """The MP4 and the archive; what could not be made, in words."""
        notes = []
        try:
            export.remux(folder.path, names, folder.path / export.VIDEO)
        except Exception as exc:  # the footage is verified even if no browser can play it
            log.warning("clip %s: no MP4: %s", hold["id"], exc)
            notes.append(f"no playable video: {exc}"[:500])
        note = export.verify_note(hold, export.archive_name(hold["id"]), public_key,
                                  key_fingerprint(public_key), segments)
        export.write_archive(folder.path, names, folder.path / export.ARCHIVE,
                             export.archive_name(hold["id"]).removesuffix(".tar"), note)
        return notes

    def _finish(self, hold_id: str, state: str, folder: ClipFolder, problems: list[str],
                **values: Any) -> None:
        self.writer.call(lambda db: clips.update(db, hold_id, state=state, problems=problems,
                                                 bytes=folder.size(), **values))
        log.info("clip %s %s%s", hold_id, state, f": {problems[0]}" if problems else "")
