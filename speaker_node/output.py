"""Sound output through PyAudio (PortAudio over ALSA), imported only here and lazily.

One interface, :class:`PyAudioOutput`: ``open()`` a 48 kHz mono 16-bit
stream, ``write(pcm)``, ``close_stream()`` when the amplifier goes off, so
nothing is sent to the DAC while idle. The device is chosen by (part of) its
name as PortAudio lists it, e.g. an ALSA PCM from ``/etc/asound.conf``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from speaker_node.errors import AudioDeviceError
from speaker_node.pcm import RATE

log = logging.getLogger(__name__)


_shared_lock = threading.Lock()
_shared: Any = None
_users = 0


def _portaudio_acquire() -> Any:
    """The process's one PyAudio instance. Terminating PortAudio frees ALSA's global
    config (``snd_config_update_free_global``), which aborts the process if another
    stream is still open, so it is shared and terminated only by its last user."""
    global _shared, _users
    import pyaudio
    with _shared_lock:
        if _shared is None:
            _shared = pyaudio.PyAudio()
        _users += 1
        return _shared


def _portaudio_release() -> None:
    global _shared, _users
    with _shared_lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            _shared.terminate()
            _shared = None


class PyAudioOutput:
    """A blocking PyAudio output stream on the named device (default: PortAudio's default)."""

    def __init__(self, device: str | None = None, *, rate: int = RATE,
                 frames_per_buffer: int = 960):
        self.device, self.rate = device, rate
        self.frames_per_buffer = frames_per_buffer
        self._pa: Any = None
        self._stream: Any = None
        self._index: int | None = None  # the device's, once found (PortAudio's list is fixed)

    def _device_index(self) -> int | None:
        if not self.device or self._index is not None:
            return self._index
        names = []
        for i in range(self._pa.get_device_count()):
            info = self._pa.get_device_info_by_index(i)
            names.append(info["name"])
            if info["maxOutputChannels"] > 0 and self.device in info["name"]:
                self._index = i
                return i
        raise AudioDeviceError(f"no output device named like {self.device!r}; "
                               f"PortAudio lists {names}")

    def prepare(self) -> None:
        """Start PortAudio and find the device now, not when the first sound is due:
        PortAudio probes every ALSA device as it starts, which an emergency should not
        wait for. Raises :class:`AudioDeviceError` as :meth:`open` would."""
        try:
            if self._pa is None:
                self._pa = _portaudio_acquire()
            self._device_index()
        except (OSError, ImportError) as exc:
            raise AudioDeviceError(f"cannot start sound output {self.device or 'default'}: "
                                   f"{exc}") from None

    def open(self) -> None:
        """Open the stream (idempotent)."""
        if self._stream is not None:
            return
        self.prepare()
        try:
            import pyaudio
            self._stream = self._pa.open(
                format=pyaudio.paInt16, channels=1, rate=self.rate, output=True,
                output_device_index=self._device_index(),
                frames_per_buffer=self.frames_per_buffer)
        except OSError as exc:
            raise AudioDeviceError(f"cannot open sound output {self.device or 'default'}: "
                                   f"{exc}") from None

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def write(self, pcm: bytes) -> None:
        if self._stream is None:
            self.open()
        try:
            self._stream.write(pcm, exception_on_underflow=False)
        except OSError as exc:
            raise AudioDeviceError(f"writing to {self.device or 'default'} failed: {exc}") from None

    def close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop_stream()
                self._stream.close()
            except OSError as exc:
                log.warning("closing the sound stream: %s", exc)
            self._stream = None

    def close(self) -> None:
        self.close_stream()
        if self._pa is not None:
            self._pa, self._index = None, None
            _portaudio_release()
