"""The speaker role: keeps the schedule, fetches audio ahead, plays on time, reports receipts.

Threads: the *scheduler* picks the next occurrence and plays it on this
node's clock (no message from the network is needed at air time); the
*fetcher* keeps the audio of every upcoming occurrence in the cache. The
durable outbox carries one receipt per occurrence: played (with actual start
and end), cut short, or skipped with the reason.

Levels follow Circular 39/2020: a higher level pre-empts a lower one that plays
(priority a normal item; an emergency either, after an attention tone, at full
volume, even in quiet hours); the pre-empted item then resumes where it stopped
(or is reported cut short if resuming is off). Items the operator chose to
``order`` wait for the one playing to end. An emergency's amplifier lead is short
(``emergency_lead_s``): it must be heard within a second of its call.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from node_runtime.clock import describe
from speaker_node import tones
from speaker_node.amplifier import Amplifier
from speaker_node.cache import AudioCache
from speaker_node.errors import AudioDeviceError, CacheError, ScheduleError, SpeakerError
from speaker_node.ledger import Ledger
from speaker_node.output import PyAudioOutput
from speaker_node.pcm import RATE, WIDTH, Pcm, decode_pcm, scaled, wav_samples
from speaker_node.timeline import Occurrence, Schedule, parse_schedule
from wire.messages import format_ts, utc_now
from wire.speaker import (
    CMD_CANCEL,
    CMD_RESYNC,
    CMD_SET_VOLUME,
    CMD_STATUS,
    CMD_STOP,
    CMD_TEST_TONE,
    CONFIG_KEY,
    CUT_SHORT,
    EVENT_PLAYBACK,
    PLAYED,
    REASON_CANCELLED,
    REASON_CLOCK,
    REASON_FAULT,
    REASON_FILE,
    REASON_MISSED,
    REASON_OFFLINE,
    REASON_PREEMPTED,
    REASON_QUIET,
    REASON_RESTART,
    REASON_STOPPED,
    SKIPPED,
)

log = logging.getLogger(__name__)

CHUNK = 960  # 20 ms at 48 kHz: how often playback checks for stop and pre-emption
AHEAD_S = 0.1  # how far ahead of the wall clock PCM is written to the device
STREAM_LEAD_S = 0.3  # the sound stream is opened this long before sound
EMERGENCY_TOLERANCE_S = 600.0
ORDERED_TOLERANCE_S = 1800.0
RECEIPTS_KEPT_S = 30 * 86400.0  # sent receipts are remembered this long (no replays)
FORGET_EVERY_S = 3600.0  # how often receipts past that are deleted


class _Abort(Exception):
    """Unwinds playback: the item is cut short at ``position`` (frames)."""

    def __init__(self, reason: str, position: int = 0):
        super().__init__(reason)
        self.reason, self.position = reason, position


class Speaker:
    """Attached to a :class:`node_runtime.Node`; ``start`` then ``close``."""

    def __init__(self, node: Any, *, output: PyAudioOutput, amplifier: Amplifier,
                 cache: AudioCache, ledger: Ledger,
                 clock_synced: Callable[[], bool] | None = None,
                 amp_lead_s: float = 1.5, amp_tail_s: float = 2.0,
                 emergency_lead_s: float = 0.3,
                 late_tolerance_s: float = 30.0, resume_after_preempt: bool = True,
                 attention_tone_s: float = 3.0, emit: Callable[[str, dict[str, Any]], Any]
                 | None = None):
        self.node, self.output, self.amplifier = node, output, amplifier
        self.cache, self.ledger = cache, ledger
        self.clock_synced = clock_synced or node.clock_synced
        self.amp_lead_s, self.amp_tail_s = amp_lead_s, amp_tail_s
        self.emergency_lead_s = emergency_lead_s
        self.late_tolerance_s = late_tolerance_s
        self.resume_after_preempt = resume_after_preempt
        self.attention_tone_s = attention_tone_s
        self._emit = emit or node.emit
        self.schedule = Schedule()
        self._have_schedule = False  # no eviction before the stored schedule is applied
        self._lock = threading.RLock()  # schedule, settled set, playing stack
        self._audio_lock = threading.RLock()  # one user of the output at a time
        # Every receipt goes through _settle, so memory knows what the ledger knows:
        # the scheduler asks about each item on every tick.
        self._settled: set[str] = self.ledger.receipt_ids()
        self._playing: list[tuple[Occurrence, float]] = []  # stack: (occurrence, position s)
        self._abort: tuple[str, str | None] | None = None  # (reason, occurrence or None=all)
        self._amp_off_at: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._fetch_wake = threading.Event()
        self._threads = [threading.Thread(target=self._scheduler, name="scheduler", daemon=True),
                         threading.Thread(target=self._fetcher, name="fetcher", daemon=True)]
        node.on_config(self.apply_config)
        # What is playing now, in telemetry sent the moment it starts and ends: the
        # console shows each speaker's live state from it.
        node.telemetry_fields.append(self._now_playing)
        for name, handler in ((CMD_STOP, self.cmd_stop), (CMD_CANCEL, self.cmd_cancel),
                              (CMD_SET_VOLUME, self.cmd_set_volume),
                              (CMD_TEST_TONE, self.cmd_test_tone),
                              (CMD_RESYNC, self.cmd_resync), (CMD_STATUS, self.status)):
            node.command(name, handler)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Settle what the last run left (receipts owed, a play cut by a crash), then run."""
        tones.attention_tone(self.attention_tone_s)  # made now: an emergency must not wait
        try:
            self.output.prepare()  # (nor for PortAudio to start)
        except AudioDeviceError as exc:  # reported again, per item, when one is due
            log.error("%s", exc)
        interrupted = self.ledger.interrupted()
        if interrupted is not None:
            log.warning("restarted during playback of %s", interrupted["occurrence"])
            self._settle({**interrupted, "status": CUT_SHORT, "reason": REASON_RESTART})
            self.ledger.end()
        for data in self.ledger.owed():
            self._send(data)
        for t in self._threads:
            t.start()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._abort = ("node stopping", None)
        self._wake.set()
        self._fetch_wake.set()
        self.cache.close()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=10)
        self.amplifier.close()
        self.output.close()
        self.ledger.close()

    # -- config ---------------------------------------------------------------------

    def apply_config(self, desired: dict[str, Any]) -> None:
        """Config handler: adopt the pushed schedule (raises to refuse a bad one)."""
        if CONFIG_KEY not in desired:
            return
        schedule = parse_schedule(desired[CONFIG_KEY])
        with self._lock:
            if schedule.volume != self.schedule.volume:
                self.ledger.set_setting("volume", None)  # a newer operator volume wins
            self.schedule = schedule
            self._have_schedule = True
            ids = {o.id for o in schedule.items}
            for occ, _ in self._playing:
                if occ.broadcast and occ.id not in ids:  # (broadcast 0 is the test tone)
                    self._abort = (REASON_CANCELLED, occ.id)
        log.info("schedule: %d occurrences", len(schedule.items))
        self._wake.set()
        self._fetch_wake.set()

    @property
    def volume(self) -> float:
        local = self.ledger.setting("volume")
        return float(local) if local is not None else self.schedule.volume

    def _now_playing(self) -> dict[str, Any]:
        """Telemetry: the occurrence playing now (``None`` when silent)."""
        with self._lock:
            return {"playing": self._playing[-1][0].id if self._playing else None}

    # -- receipts -------------------------------------------------------------------

    def _settle(self, data: dict[str, Any]) -> None:
        data = {k: v for k, v in data.items() if v is not None}
        data.setdefault("clock_synced", self.clock_synced())
        data.setdefault("clock", describe(self.clock_synced))
        with self._lock:
            self._settled.add(data["occurrence"])
        self.ledger.owe(data)
        self._send(data)
        log.info("receipt %s: %s%s", data["occurrence"], data["status"],
                 f" ({data['reason']})" if data.get("reason") else "")

    def _send(self, data: dict[str, Any]) -> None:
        self._emit(EVENT_PLAYBACK, data)
        self.ledger.sent(data["occurrence"])

    def _skip(self, occ: Occurrence, reason: str) -> None:
        self._settle({**occ.summary(), "status": SKIPPED, "reason": reason,
                      "duration_s": occ.duration_s})

    def _is_settled(self, occ: Occurrence) -> bool:
        return occ.id in self._settled

    # -- scheduling -----------------------------------------------------------------

    def _tolerance(self, occ: Occurrence) -> float:
        if occ.emergency:
            return EMERGENCY_TOLERANCE_S
        return ORDERED_TOLERANCE_S if occ.order else self.late_tolerance_s

    def _pending(self, now: dt.datetime) -> list[Occurrence]:
        """Unsettled occurrences still playable; those too late are skipped here."""
        with self._lock:
            items = [o for o in self.schedule.items if not self._is_settled(o)]
        out = []
        for occ in items:
            late = (now - occ.start).total_seconds()
            if late > self._tolerance(occ):
                self._skip(occ, REASON_OFFLINE if late > occ.duration_s else REASON_MISSED)
            else:
                out.append(occ)
        return out

    def _next(self, now: dt.datetime) -> Occurrence | None:
        pending = self._pending(now)
        soon = now + dt.timedelta(seconds=self.amp_lead_s)
        due = [o for o in pending if o.start <= soon]
        if due:
            return max(due, key=lambda o: (o.rank, -o.start.timestamp()))
        return pending[0] if pending else None

    def _scheduler(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._tick()
            except Exception:
                log.exception("scheduler step failed")
                delay = 1.0
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()

    def _tick(self) -> float:
        now = utc_now()
        occ = self._next(now)
        until = (occ.start - now).total_seconds() if occ else None
        if occ is None or until is None or until > self.amp_lead_s + 0.05:
            self._amp_idle(until)
            return 0.5 if until is None else min(0.5, until - self.amp_lead_s)
        self._perform(occ)
        return 0.0

    def _amp_idle(self, until_next: float | None) -> None:
        """Switch the amplifier off after the tail, unless sound follows soon."""
        if self._amp_off_at is None or time.monotonic() < self._amp_off_at:
            return
        if until_next is not None and until_next <= self.amp_lead_s + self.amp_tail_s:
            return
        with self._audio_lock:
            self.output.close_stream()
            self.amplifier.off()
        self._amp_off_at = None

    # -- playing --------------------------------------------------------------------

    def _check(self, occ: Occurrence) -> str | None:
        """Why ``occ`` must not play, or None."""
        if self.ledger.is_cancelled(occ.id, occ.broadcast):
            return REASON_CANCELLED
        if not occ.emergency and not self.clock_synced():
            return REASON_CLOCK
        if not occ.emergency and self.schedule.in_quiet_hours(occ.start, occ.duration_s):
            return REASON_QUIET
        return None

    def _load(self, occ: Occurrence) -> Pcm:
        try:
            path = self.cache.verified_path(occ.sha256)
        except CacheError as exc:  # missing, or corrupt and deleted: last chance to fetch
            log.warning("%s; fetching it again", exc)
            self.cache.fetch(occ.sha256, occ.bytes)
            path = self.cache.verified_path(occ.sha256)
        pcm = wav_samples(path)
        if pcm is None:
            pcm = decode_pcm(path.read_bytes())
        if occ.emergency:
            pcm = tones.attention_tone(self.attention_tone_s) + pcm
        return pcm

    def _perform(self, occ: Occurrence) -> None:
        """Check, load, power the amplifier, wait for the start, play, settle the receipt."""
        reason = self._check(occ)
        if reason:
            self._skip(occ, reason)
            return
        if not self.amplifier.is_on:  # its lead runs while the file is verified and loaded
            self.amplifier.on()
        try:
            self._load_and_play(occ)
        finally:  # played or not, the relay opens after the tail
            self._amp_off_at = time.monotonic() + self.amp_tail_s

    def _load_and_play(self, occ: Occurrence) -> None:
        try:
            pcm = self._load(occ)
        except (CacheError, SpeakerError) as exc:
            log.warning("cannot play %s: %s", occ.id, exc)
            self._fetch_wake.set()
            self._skip(occ, REASON_FILE)
            return
        except Exception as exc:  # a decoder failure on a verified file: report, go on
            log.exception("cannot decode %s", occ.id)
            self._skip(occ, f"{REASON_FILE}: {exc}")
            return
        with self._audio_lock:
            try:
                self._play_occurrence(occ, pcm)
            except AudioDeviceError as exc:  # could not even open the output
                log.error("cannot play %s: %s", occ.id, exc)
                self._skip(occ, f"{REASON_FAULT}: {exc}")

    def _sound_at(self, occ: Occurrence) -> float:
        """Monotonic time at which sound starts: the scheduled start, but never sooner
        than ``amp_lead_s`` after the relay closed. Returns with the sound stream open,
        opened at most ``STREAM_LEAD_S`` before then: the relay closes first, and the
        few milliseconds of CPU an open costs come while the amplifier powers up."""
        if not self.amplifier.is_on:
            self.amplifier.on()
        lead = self.emergency_lead_s if occ.emergency else self.amp_lead_s
        ready = self.amplifier.switched_at + lead
        wall = time.monotonic() + (occ.start - utc_now()).total_seconds()
        start = max(ready, wall)
        _sleep_until(start - STREAM_LEAD_S, self._stop)
        if not self._stop.is_set():
            self.output.open()
        return start

    def _play_occurrence(self, occ: Occurrence, pcm: Pcm) -> None:
        start_mono = self._sound_at(occ)
        _sleep_until(start_mono, self._stop)
        if self._stop.is_set():
            return  # shutting down before it began: left unsettled, it plays after a restart
        started = utc_now()
        base = {**occ.summary(), "duration_s": occ.duration_s,
                "late_s": round((started - occ.start).total_seconds(), 3)}

        def note() -> None:  # (again after a pre-emption, which noted its own item)
            self.ledger.begin(occ.id, base, format_ts(started))

        interruptions: list[dict[str, Any]] = []
        status, reason, position = PLAYED, None, 0
        volume = 1.0 if occ.emergency else self.volume
        try:
            position = self._pump(occ, pcm, interruptions, note)
        except _Abort as exc:
            status, reason, position = CUT_SHORT, exc.reason, exc.position
        except SpeakerError as exc:
            log.error("playback of %s failed: %s", occ.id, exc)
            status, reason = CUT_SHORT, f"{REASON_FAULT}: {exc}"
        ended = utc_now()
        self.ledger.end()
        self._settle({**base, "status": status, "reason": reason, "started": format_ts(started),
                      "ended": format_ts(ended), "volume": round(volume, 3),
                      "played_s": round(position / RATE, 3),
                      "interruptions": interruptions or None})

    def _pump(self, occ: Occurrence, pcm: Pcm, interruptions: list[dict[str, Any]],
              note: Callable[[], None] | None = None) -> int:
        """Write ``pcm`` in 20 ms chunks paced to the wall clock; return frames written.
        ``note`` records in the ledger that ``occ`` plays, after the first chunk is
        written; the telemetry saying so goes a second in (and at the end): sound
        first, when an emergency starts on every speaker at once, bookkeeping after."""
        with self._lock:
            self._playing.append((occ, 0.0))
        try:
            t0, sent, pos, noted = time.monotonic(), 0, 0, time.monotonic()
            first, told = True, False
            while pos < len(pcm):
                self._check_abort(occ, pos)
                if not occ.emergency:
                    pre = self._due_higher(occ)
                    if pre is not None:
                        interruptions.append(self._preempt(occ, pre, pos))
                        if note is not None:
                            note()
                        t0, sent = time.monotonic(), 0
                volume = 1.0 if occ.emergency else self.volume
                block = pcm.read(pos, CHUNK)
                self.output.write(scaled(block, volume))
                frames = len(block) // WIDTH
                pos, sent = pos + frames, sent + frames
                ahead = t0 + sent / RATE - time.monotonic()
                if ahead > AHEAD_S:
                    time.sleep(ahead - AHEAD_S)
                if first:  # the first chunk is out
                    first = False
                    if note is not None:
                        note()
                if time.monotonic() - noted >= 1.0:
                    if not told:  # a second in: the controller hears what plays
                        told = True
                        self.node.publish_telemetry()
                    noted = time.monotonic()
                    self.ledger.progress(round(pos / RATE, 3), format_ts(utc_now()))
            # let the last buffered audio drain before the receipt says "ended"
            _sleep_until(t0 + sent / RATE, self._stop)
            return pos
        finally:
            with self._lock:
                self._playing.pop()
                if not self._playing:
                    self._abort = None
            self.node.publish_telemetry()

    def _check_abort(self, occ: Occurrence, pos: int) -> None:
        abort = self._abort
        if abort is not None and (abort[1] is None or abort[1] == occ.id):
            if abort[1] is not None:
                self._abort = None
            raise _Abort(abort[0], pos)

    def _due_higher(self, playing_now: Occurrence) -> Occurrence | None:
        """An item now due of a higher level than ``playing_now`` (the highest, earliest
        first), which pre-empts it; an item to ``order`` waits its turn instead."""
        now = utc_now()
        found: Occurrence | None = None
        with self._lock:
            playing = {o.id for o, _ in self._playing}
            for occ in self.schedule.items:
                if occ.start > now:
                    break
                if (occ.rank > playing_now.rank and not occ.order and occ.id not in playing
                        and not self._is_settled(occ)
                        and (now - occ.start).total_seconds() <= self._tolerance(occ)
                        and (found is None or occ.rank > found.rank)):
                    found = occ
        return found

    def _preempt(self, occ: Occurrence, pre: Occurrence, pos: int) -> dict[str, Any]:
        """Play the emergency ``pre`` in the middle of ``occ``; then resume or cut ``occ``."""
        at = utc_now()
        log.warning("%s pre-empts %s at %.1f s", pre.id, occ.id, pos / RATE)
        self._perform(pre)
        note = {"at": format_ts(at), "by": pre.id, "position_s": round(pos / RATE, 3),
                "resumed": format_ts(utc_now())}
        if not self.resume_after_preempt:
            raise _Abort(REASON_PREEMPTED, pos)
        return note

    # -- commands -------------------------------------------------------------------

    def cmd_stop(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stop whatever plays now (it is reported cut short)."""
        with self._lock:
            playing = [o.id for o, _ in self._playing]
            if playing:
                self._abort = (REASON_STOPPED, None)
        return {"stopped": playing}

    def cmd_cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        """Cancel an occurrence (``occurrence``) or every occurrence of ``broadcast``."""
        if args.get("occurrence"):
            key = str(args["occurrence"])
        elif args.get("broadcast") is not None:
            key = f"broadcast:{int(args['broadcast'])}"
        else:
            raise ScheduleError("cancel needs 'occurrence' or 'broadcast'")
        self.ledger.cancel(key)
        with self._lock:
            for occ, _ in self._playing:
                if key in (occ.id, f"broadcast:{occ.broadcast}"):
                    self._abort = (REASON_CANCELLED, occ.id)
        self._wake.set()
        return {"cancelled": key}

    def cmd_set_volume(self, args: dict[str, Any]) -> dict[str, Any]:
        """Set the volume now (0..1), until the operator pushes another; null clears."""
        volume = args.get("volume")
        if volume is not None and (not isinstance(volume, int | float) or not 0 <= volume <= 1):
            raise ScheduleError(f"volume {volume!r}: expected 0..1 or null")
        self.ledger.set_setting("volume", volume)
        return {"volume": self.volume}

    def cmd_test_tone(self, args: dict[str, Any]) -> dict[str, Any]:
        """Play a sine (``frequency`` Hz, ``seconds``) now, with the amplifier switched."""
        seconds = float(args.get("seconds", 3.0))
        frequency = float(args.get("frequency", 1000.0))
        if not 0 < seconds <= 30 or not 20 <= frequency <= 20000:
            raise ScheduleError("test tone: seconds in (0, 30], frequency 20..20000 Hz")
        if self._playing:
            raise SpeakerError(f"busy playing {self._playing[-1][0].id}; stop it first")
        tone = Occurrence(id=f"test-tone@{format_ts(utc_now())}", broadcast=0, title="test tone",
                          start=utc_now(), level="normal", sha256="0" * 64, bytes=0,
                          duration_s=seconds)
        with self._audio_lock:
            _sleep_until(self._sound_at(tone), self._stop)
            frames = self._pump(tone, tones.sine(frequency, seconds), [])
        self._amp_off_at = time.monotonic() + self.amp_tail_s
        self._wake.set()
        return {"played_s": round(frames / RATE, 3), "volume": self.volume}

    def cmd_resync(self, args: dict[str, Any]) -> dict[str, Any]:
        """Re-apply the stored schedule, re-verify the cache and fetch what is missing."""
        if CONFIG_KEY in self.node.desired:
            self.apply_config(self.node.desired)
        corrupt = self.cache.verify_all()
        for sha, size in self.schedule.shas.items():
            try:
                self.cache.fetch(sha, size, keep=self.schedule.shas)
            except CacheError as exc:
                log.warning("resync: %s", exc)
        return {"corrupt_deleted": len(corrupt), "cache": self.cache.state(self.schedule.shas)}

    def status(self, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Idle or playing what, next item, cache, amplifier, volume, clock."""
        now = utc_now()
        with self._lock:
            playing = [o.summary() for o, _ in self._playing]
            upcoming = [o for o in self.schedule.items
                        if o.start > now and not self._is_settled(o)]
        return {"state": "playing" if playing else "idle", "playing": playing,
                "next": upcoming[0].summary() if upcoming else None,
                "scheduled": len(upcoming), "cache": self.cache.state(self.schedule.shas),
                "amplifier": "on" if self.amplifier.is_on else "off",
                "volume": self.volume, "clock_synced": self.clock_synced(),
                "clock": describe(self.clock_synced)}

    # -- fetching -------------------------------------------------------------------

    def _fetcher(self) -> None:
        forget_at = 0.0
        while not self._stop.is_set():
            failed = False
            now = utc_now()
            with self._lock:
                wanted = [o for o in self.schedule.items if not self._is_settled(o)
                          and (now - o.start).total_seconds() < self._tolerance(o)]
            keep = {o.sha256 for o in wanted} | {o.sha256 for o, _ in self._playing}
            for occ in wanted:
                if self._stop.is_set():
                    return
                if not self.cache.has(occ.sha256):
                    try:
                        self.cache.fetch(occ.sha256, occ.bytes, keep=keep)
                    except CacheError as exc:
                        log.warning("prefetch: %s", exc)
                        failed = True
            if not failed and self._have_schedule:
                self.cache.evict(keep)
            if time.monotonic() >= forget_at:  # not on every wake: a push wakes every node
                self.ledger.forget_before(time.time() - RECEIPTS_KEPT_S)
                forget_at = time.monotonic() + FORGET_EVERY_S
            self._fetch_wake.wait(10.0 if failed else 300.0)
            self._fetch_wake.clear()


def _sleep_until(deadline: float, stop: threading.Event) -> None:
    """Sleep to a monotonic deadline: coarse waits, then a short spin for the last 2 ms."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or stop.is_set():
            return
        if left > 0.002:
            stop.wait(left - 0.002)
