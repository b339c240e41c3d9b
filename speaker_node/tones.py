"""Generated sounds: the attention tone before emergencies and the technician's test tone."""

from __future__ import annotations

import functools
from typing import Any

RATE = 48_000


def _fade(signal: Any, seconds: float = 0.01) -> Any:
    import numpy as np
    n = min(int(RATE * seconds), len(signal) // 2)
    ramp = np.linspace(0.0, 1.0, n)
    signal[:n] *= ramp
    signal[len(signal) - n:] *= ramp[::-1]
    return signal


def sine(frequency: float, seconds: float, level_dbfs: float = -12.0) -> Any:
    """A faded sine as int16 samples."""
    import numpy as np
    t = np.arange(int(RATE * seconds)) / RATE
    signal = _fade(np.sin(2 * np.pi * frequency * t) * 10 ** (level_dbfs / 20))
    return (signal * 32767).astype(np.int16)


@functools.lru_cache(maxsize=2)
def attention_tone(seconds: float = 3.0) -> Any:
    """Alternating 880/660 Hz half-second notes: the signal that an emergency follows.
    Cached (callers must not modify it): an emergency should not wait for arithmetic."""
    import numpy as np
    notes = [sine(880.0 if i % 2 == 0 else 660.0, 0.5) for i in range(int(seconds / 0.5))]
    return np.concatenate(notes) if notes else np.zeros(0, dtype=np.int16)
