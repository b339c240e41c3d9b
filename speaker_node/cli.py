"""``thanthien-speaker``: the loudspeaker node's entry point.

Thin: :func:`node_runtime.cli.main` reads argv and the node's TOML; this
module parses its ``[speaker]`` table once (:mod:`speaker_node.settings`), turns it
into plain objects (sound output, amplifier relay, audio cache) and hands them to
:class:`Speaker`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from node_runtime import cli as node_cli
from node_runtime.https import controller_ca_file
from node_runtime.node import Node
from speaker_node.amplifier import Amplifier
from speaker_node.cache import AudioCache
from speaker_node.ledger import Ledger
from speaker_node.output import PyAudioOutput
from speaker_node.settings import parse_settings
from speaker_node.speaker import Speaker


def build(node: Node, *, pin_factory: Any = None,
          clock_synced: Callable[[], bool] | None = None) -> Speaker:
    """The speaker role for ``node``, from its config's ``[speaker]`` table; started."""
    settings = parse_settings(node.config.role_settings)
    mqtt = node.config.mqtt
    auth = (mqtt.username or node.device_id, mqtt.password) if mqtt.password else None
    data = node.config.data_dir
    # The controller's certificate is signed by the commune CA the node trusts for MQTT,
    # unless [speaker] controller_ca names another (see node_runtime.https).
    cache = AudioCache(data / "audio", settings.controller_url, auth=auth,
                       ca_file=controller_ca_file(settings.controller_ca, mqtt.tls_ca),
                       max_bytes=settings.cache_max_bytes)
    speaker = Speaker(
        node, output=PyAudioOutput(settings.output_device),
        amplifier=Amplifier(settings.relay_pin, active_high=settings.relay_active_high,
                            pin_factory=pin_factory),
        cache=cache, ledger=Ledger(data / "speaker.db"), amp_lead_s=settings.amp_lead_s,
        emergency_lead_s=settings.emergency_lead_s,
        clock_synced=clock_synced, amp_tail_s=settings.amp_tail_s,
        late_tolerance_s=settings.late_tolerance_s,
        resume_after_preempt=settings.resume_after_preempt)
    speaker.start()
    return speaker


def main(argv: Sequence[str] | None = None) -> int:
    return node_cli.main(build, argv, prog="thanthien-speaker",
                         description="Hamlet loudspeaker node: plays the commune's broadcasts.")


if __name__ == "__main__":
    sys.exit(main())
