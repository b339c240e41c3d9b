"""The loudspeaker's part of the wire contract: event, command and config names.

Spelled here once and used by both the controller (``controller.broadcasts``)
and the node (``speaker_node``).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: Event a speaker emits once per occurrence: played, cut short or skipped.
EVENT_PLAYBACK = "playback"

#: The key of the desired config that holds a speaker's schedule and volume.
CONFIG_KEY = "speaker"

#: Receipt statuses.
PLAYED = "played"
CUT_SHORT = "cut_short"
SKIPPED = "skipped"
RECEIPT_STATUSES = (PLAYED, CUT_SHORT, SKIPPED)

#: Bulletin levels of Circular 39/2020/TT-BTTTT, lowest first.
LEVELS = ("normal", "priority", "emergency")

#: Commands a speaker node handles.
CMD_STOP = "stop"
CMD_CANCEL = "cancel"
CMD_SET_VOLUME = "set_volume"
CMD_TEST_TONE = "test_tone"
CMD_RESYNC = "resync"
CMD_STATUS = "status"
COMMANDS = (CMD_STOP, CMD_CANCEL, CMD_SET_VOLUME, CMD_TEST_TONE, CMD_RESYNC, CMD_STATUS)

#: Reasons a receipt gives for skipping or cutting short.
REASON_CLOCK = "clock not synchronised"
REASON_FILE = "audio file missing or corrupt"
REASON_QUIET = "quiet hours"
REASON_FAULT = "device fault"
REASON_RESTART = "device restarted during playback"
REASON_MISSED = "started too late (device busy or restarting)"
REASON_OFFLINE = "device offline past the item's end"
REASON_CANCELLED = "cancelled"
REASON_STOPPED = "stopped by operator"
REASON_PREEMPTED = "pre-empted by a higher-level item"

#: Path of a rendition on the controller, by its sha256.
AUDIO_FILE_PATH = "/api/v1/audio/files/{sha256}"


def in_quiet_hours(start: dt.datetime, duration_s: float, tz: str,
                   quiet: tuple[dt.time, dt.time]) -> bool:
    """True if any part of [start, start + duration) falls in the nightly quiet window
    ``quiet`` (local times in ``tz``; a window may run past midnight). The controller
    refuses such items and the node skips them, by this one rule."""
    zone = ZoneInfo(tz)
    begin = start.astimezone(zone)
    end = begin + dt.timedelta(seconds=duration_s)
    quiet_from, quiet_to = quiet
    day = begin.date() - dt.timedelta(days=1)
    while day <= end.date():
        w_start = dt.datetime.combine(day, quiet_from, zone)
        w_end = dt.datetime.combine(day + dt.timedelta(days=1 if quiet_to <= quiet_from else 0),
                                    quiet_to, zone)
        if begin < w_end and end > w_start:
            return True
        day += dt.timedelta(days=1)
    return False
