"""``thanthien-speaker``: the loudspeaker node's entry point.

Thin: :func:`node_runtime.cli.main` reads argv and the node's TOML; this
module turns its ``[speaker]`` table into plain objects (sound output,
amplifier relay, audio cache) and hands them to :class:`Speaker`.

``[speaker]`` keys: ``controller_url`` (where audio is downloaded), ``output_device``
(part of the PortAudio device name; default device if absent), ``relay_pin``
(BCM GPIO of the amplifier relay; none = no relay), ``relay_active_high``,
``amp_lead_s`` (≥ 1), ``amp_tail_s``, ``cache_max_mb``, ``late_tolerance_s``,
``resume_after_preempt``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from node_runtime import cli as node_cli
from node_runtime.errors import ConfigError
from node_runtime.node import Node
from speaker_node.amplifier import Amplifier
from speaker_node.cache import AudioCache
from speaker_node.ledger import Ledger
from speaker_node.output import PyAudioOutput
from speaker_node.speaker import Speaker

KNOWN = ("controller_url", "output_device", "relay_pin", "relay_active_high", "amp_lead_s",
         "amp_tail_s", "cache_max_mb", "late_tolerance_s", "resume_after_preempt")


def build(node: Node, *, pin_factory: Any = None,
          clock_synced: Callable[[], bool] | None = None) -> Speaker:
    """The speaker role for ``node``, from its config's ``[speaker]`` table; started."""
    settings = node.config.role_settings
    unknown = set(settings) - set(KNOWN)
    if unknown:
        raise ConfigError(f"unknown [speaker] setting(s) {sorted(unknown)}; known: {KNOWN}")
    lead = float(settings.get("amp_lead_s", 1.5))
    if lead < 1.0:
        raise ConfigError(f"amp_lead_s {lead}: the relay needs at least 1 s before sound")
    mqtt = node.config.mqtt
    auth = (mqtt.username or node.device_id, mqtt.password) if mqtt.password else None
    data = node.config.data_dir
    cache = AudioCache(data / "audio", settings.get("controller_url"), auth=auth,
                       max_bytes=int(float(settings.get("cache_max_mb", 512)) * (1 << 20)))
    speaker = Speaker(
        node, output=PyAudioOutput(settings.get("output_device")),
        amplifier=Amplifier(settings.get("relay_pin"),
                            active_high=bool(settings.get("relay_active_high", True)),
                            pin_factory=pin_factory),
        cache=cache, ledger=Ledger(data / "speaker.db"), amp_lead_s=lead, clock_synced=clock_synced,
        amp_tail_s=float(settings.get("amp_tail_s", 2.0)),
        late_tolerance_s=float(settings.get("late_tolerance_s", 30.0)),
        resume_after_preempt=bool(settings.get("resume_after_preempt", True)))
    speaker.start()
    return speaker


def main(argv: Sequence[str] | None = None) -> int:
    return node_cli.main(build, argv, prog="thanthien-speaker",
                         description="Hamlet loudspeaker node: plays the commune's broadcasts.")


if __name__ == "__main__":
    sys.exit(main())
