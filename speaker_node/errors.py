"""Errors raised by the speaker node."""

from wire.errors import ThanthienError


class SpeakerError(ThanthienError):
    """Base of the speaker node's errors."""


class ScheduleError(SpeakerError, ValueError):
    """A pushed schedule that cannot be used; the message names the bad value."""


class CacheError(SpeakerError, OSError):
    """Audio could not be fetched or stored in the local cache."""


class CorruptAudio(CacheError):
    """A file whose sha256 does not match the one the schedule names."""


class AudioDeviceError(SpeakerError, OSError):
    """The sound output could not be opened or written."""
