"""Generated sounds: the attention tone before emergencies and the technician's test tone."""

from __future__ import annotations

import functools
import math
from array import array

from speaker_node.pcm import RATE, Pcm

FADE_S = 0.01  # fade in and out, so a tone starts and ends without a click


@functools.lru_cache(maxsize=8)
def sine(frequency: float, seconds: float, level_dbfs: float = -12.0) -> Pcm:
    """A sine with 10 ms linear fades, as 16-bit samples. Cached: a :class:`Pcm` of
    bytes is immutable, and an emergency should not wait for arithmetic."""
    n = int(RATE * seconds)
    fade = min(int(RATE * FADE_S), n // 2)
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    step = 2 * math.pi * frequency / RATE
    sin = math.sin
    wave = [amplitude * sin(step * i) for i in range(n)]
    ramp = max(fade - 1, 1)
    for i in range(fade):
        wave[i] *= i / ramp
        wave[n - 1 - i] *= i / ramp
    return Pcm(array("h", map(int, wave)).tobytes())


def attention_tone(seconds: float = 3.0) -> Pcm:
    """Alternating 880/660 Hz half-second notes: the signal that an emergency follows."""
    notes = [sine(880.0 if i % 2 == 0 else 660.0, 0.5) for i in range(int(seconds / 0.5))]
    return sum(notes, Pcm())
