"""A simulated rating kiosk: the real node runtime, with citizens who rate at random."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from node_runtime.node import Node

log = logging.getLogger(__name__)

LEVELS_4 = ("Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng")


class SimulatedCitizens:
    """Emits a rating within a few seconds, then every ``min_gap``..``max_gap`` seconds
    until closed: about the pace of a busy desk. Much faster (over 120 an hour) and the
    controller would flag the kiosk's ratings as ballot stuffing."""

    def __init__(self, node: Node, *, min_gap: float = 30.0, max_gap: float = 60.0,
                 seed: int | None = None):
        self.node = node
        self.min_gap, self.max_gap = min_gap, max_gap
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citizens", daemon=True)
        self.desk = node.config.role_settings.get("desk", "Bộ phận một cửa")
        node.command("ping", lambda args: {"pong": True})
        node.on_config(self._configure)

    def _configure(self, config: dict[str, Any]) -> None:
        gap = config.get("rating_gap_s")
        if gap is not None:
            if not isinstance(gap, list) or len(gap) != 2 or not 0 < gap[0] <= gap[1]:
                raise ValueError(f"rating_gap_s {gap!r}: expected [min, max] seconds")
            self.min_gap, self.max_gap = float(gap[0]), float(gap[1])

    def start(self) -> None:
        self._thread.start()

    def rate(self) -> dict[str, Any]:
        # Weighted like real desks: most citizens are satisfied.
        level = self._random.choices((1, 2, 3, 4), weights=(45, 35, 12, 8))[0]
        return self.node.emit("rating", {
            "level": level, "scale": 4, "label": LEVELS_4[level - 1], "desk": self.desk,
            "misuse": False,
        })

    def _run(self) -> None:
        gap = self._random.uniform(2.0, 8.0)  # the first citizen is already at the desk
        while not self._stop.wait(gap):
            gap = self._random.uniform(self.min_gap, self.max_gap)
            event = self.rate()
            log.info("simulated citizen rated %s (seq %s)", event["data"]["level"], event["seq"])

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def attach(node: Node) -> SimulatedCitizens:
    citizens = SimulatedCitizens(node)
    citizens.start()
    return citizens
