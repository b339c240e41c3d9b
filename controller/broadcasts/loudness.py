"""Loudness and peaks of 48 kHz mono audio, in chunks of any size: the ITU-R BS.1770-4
meter (EBU R128) and a look-ahead peak limiter. Pure signal processing; no files, no
database. :mod:`controller.broadcasts.audio_library` uses them to make renditions."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

RATE = 48_000
PEAK_CEILING_DBFS = -1.0

# K-weighting at 48 kHz as pyloudnorm designs it (RBJ biquads: a +4 dB high
# shelf at 1500 Hz, Q 1/√2, then a high pass at 38 Hz, Q 0.5), so the two
# meters agree; (b, a) per stage.
_K_WEIGHTING = (
    ((1.5351828863637502, -2.691804030199196, 1.198426263333146),
     (1.0, -1.6906995865986896, 0.7325047060963897)),
    ((0.9950442970178917, -1.9900885940357833, 0.9950442970178917),
     (1.0, -1.990076284018423, 0.9901009040531438)),
)
_HOP = RATE // 10  # 100 ms: gating blocks are 400 ms, overlapping by 75 %
ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0



class LoudnessMeter:
    """ITU-R BS.1770-4 integrated loudness of 48 kHz mono audio fed in chunks of any size.

    The K-weighting filters carry their state from chunk to chunk; only the
    energy of each 100 ms hop is kept (three hours is 108 000 floats), and
    the 400 ms gating blocks are sums of four hops.
    """

    def __init__(self) -> None:
        import numpy as np
        self._state = [np.zeros(2) for _ in _K_WEIGHTING]
        self._hops = array("d")
        self._partial, self._partial_n = 0.0, 0

    def feed(self, samples: Any) -> None:
        """Add the next samples (float, full scale 1.0)."""
        from scipy.signal import lfilter
        y = samples
        for i, (b, a) in enumerate(_K_WEIGHTING):
            y, self._state[i] = lfilter(b, a, y, zi=self._state[i])
        self._add_energy(y * y)

    def _add_energy(self, squares: Any) -> None:
        """Sum squares into whole 100 ms hops, keeping the unfinished one."""
        head = min(len(squares), _HOP - self._partial_n)
        self._partial += float(squares[:head].sum())
        self._partial_n += head
        if self._partial_n < _HOP:
            return
        self._hops.append(self._partial)
        rest = squares[head:]
        whole = len(rest) // _HOP * _HOP
        self._hops.extend(rest[:whole].reshape(-1, _HOP).sum(axis=1).tolist())
        self._partial, self._partial_n = float(rest[whole:].sum()), len(rest) - whole

    def integrated(self) -> float:
        """Gated loudness in LUFS so far; −inf if nothing passes the absolute gate."""
        import numpy as np
        hops = np.array(self._hops, dtype=np.float64)
        if len(hops) < 4:
            return -math.inf
        blocks = np.convolve(hops, np.ones(4), mode="valid") / (4 * _HOP)
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(blocks)
        loud = blocks[levels >= ABSOLUTE_GATE_LUFS]
        if not len(loud):
            return -math.inf
        relative = -0.691 + 10 * math.log10(loud.mean()) + _RELATIVE_GATE_LU
        gated = blocks[(levels > relative) & (levels > ABSOLUTE_GATE_LUFS)]
        return -0.691 + 10 * math.log10(gated.mean()) if len(gated) else -math.inf


def limit(x: Any, ceiling_dbfs: float = PEAK_CEILING_DBFS, window_s: float = 0.005) -> Any:
    """A look-ahead peak limiter: the gain needed around each peak, held and smoothed
    over ``window_s`` so it ducks without clicks, never letting a sample pass the ceiling."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    ceiling = 10 ** (ceiling_dbfs / 20)
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    if need.min() >= 1.0:
        return x
    width = max(1, int(window_s * RATE))
    gain = uniform_filter1d(minimum_filter1d(need, size=4 * width + 1), size=2 * width + 1)
    return x * np.minimum(gain, need)


def limit_stream(chunks: Iterable[Any], ceiling_dbfs: float = PEAK_CEILING_DBFS,
                 window_s: float = 0.005) -> Iterator[Any]:
    """:func:`limit` over a stream of chunks, giving what it gives on the whole array.

    The filters reach three windows either side of a sample, so each chunk
    is limited with six windows of the audio before it as context and its
    last six held back until the next arrives; the first and last chunks
    keep the real edges, as on the whole array.
    """
    import numpy as np
    margin = 6 * max(1, int(window_s * RATE))
    before = held = np.zeros(0)
    for chunk in chunks:
        held = np.concatenate([held, chunk])
        if len(held) <= margin:
            continue
        buf = np.concatenate([before, held])
        yield limit(buf, ceiling_dbfs, window_s)[len(before):len(buf) - margin]
        before, held = buf[max(0, len(buf) - 2 * margin):len(buf) - margin], held[-margin:]
    if len(held):
        yield limit(np.concatenate([before, held]), ceiling_dbfs, window_s)[len(before):]
