"""``thanthien-camera``: the desk camera node's entry point, and ``verify``.

``thanthien-camera --config node.toml`` runs the camera: thin, like every
node (:func:`node_runtime.cli.main` reads argv and the node's TOML); this
module parses the ``[camera]`` table once (:mod:`camera_node.settings`), builds
the source, the footage store, retention, holds and the uploader, and hands
them to :class:`Camera`.

``thanthien-camera verify PATH`` checks a footage folder or an exported clip
(:mod:`camera_node.verify_cli`): exit 0 when intact, 1 naming the first
altered, missing or reordered segment.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import Any

from camera_node import keys, verify_cli
from camera_node.camera import Camera
from camera_node.holds import Holds
from camera_node.recorder import Recorder
from camera_node.retention import Retention
from camera_node.settings import CameraSettings, parse_settings
from camera_node.store import SegmentStore
from camera_node.uploads import ClipUploader
from node_runtime import cli as node_cli
from node_runtime.https import controller_ca_file
from node_runtime.node import Node


def source_factory(settings: CameraSettings) -> Any:
    """How the recorder makes its source: picamera2 on a Pi, or frames drawn in software."""
    options: dict[str, Any] = {
        "width": settings.width, "height": settings.height, "fps": settings.fps,
        "keyframe_interval_s": settings.keyframe_interval_s, "bitrate": settings.bitrate}
    if settings.source == "synthetic":
        from camera_node.synthetic import SyntheticSource
        return functools.partial(SyntheticSource, **options)
    from camera_node.picamera import Picamera2Source  # imports picamera2 only when started
    return functools.partial(Picamera2Source, **options)


def build(node: Node) -> Camera:
    """The camera role for ``node``, from its config's ``[camera]`` table; started."""
    settings = parse_settings(node.config.role_settings)
    data = node.config.data_dir
    key = keys.load_or_create_key(data / "camera.key")
    store = SegmentStore(data / "footage", key)
    holds = Holds(data / "holds.db")
    camera: list[Camera] = []  # the recorder's callbacks reach the camera made below
    retention = Retention(store, max_age_s=settings.retention_days * 86400,
                          quota_bytes=settings.quota_bytes,
                          min_free_bytes=int(settings.min_free_mb * (1 << 20)),
                          protected=lambda segment: holds.protects(segment.start, segment.end))
    recorder = Recorder(source_factory(settings), store, retention, segment_s=settings.segment_s,
                        on_segment=lambda segment: camera[0].on_segment(segment)
                        if camera else None)
    mqtt = node.config.mqtt
    auth = (mqtt.username or node.device_id, mqtt.password) if mqtt.password else None
    uploader = ClipUploader(settings.controller_url, auth,
                            ca_file=controller_ca_file(settings.controller_ca, mqtt.tls_ca),
                            rate_bytes_s=settings.upload_bytes_s)
    camera.append(Camera(node, recorder=recorder, store=store, holds=holds, uploader=uploader,
                         public_key=keys.public_key_hex(key), segment_s=settings.segment_s,
                         hold_days=settings.hold_days))
    camera[0].start()
    return camera[0]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["verify"]:
        return verify_cli.main(args[1:])
    return node_cli.main(build, args, prog="thanthien-camera",
                         description="Desk camera node: records continuously, keeps held "
                                     "footage, uploads clips. 'thanthien-camera verify PATH' "
                                     "checks footage or a clip.")


if __name__ == "__main__":
    sys.exit(main())
