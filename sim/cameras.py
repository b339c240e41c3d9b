"""The demo's desk cameras: one real camera node per desk, drawing its frames in software.

Small frames at a low rate (640x360, 10 fps, 400 kbit/s) and 10 s segments, so three
cameras cost little CPU and a hold is complete (``held``) a few seconds after its end.
"""

from __future__ import annotations

import pathlib

from controller.broker import BrokerConfig
from provisioning.identity import DeviceIdentity, new_password
from provisioning.node_file import node_file_text

#: What the demo cameras record.
DEMO_CAMERA = {"source": "synthetic", "width": 640, "height": 360, "fps": 10,
               "bitrate": 400_000, "keyframe_interval_s": 1.0, "segment_s": 10.0,
               "retention_days": 2.0, "quota_gb": 2.0, "min_free_mb": 256.0}


def camera_id(desk: str) -> str:
    return f"cam-{desk}"[:63]


def provision_cameras(root: pathlib.Path, broker: BrokerConfig, api_url: str,
                      desks: list[str], ca: pathlib.Path | None = None
                      ) -> list[tuple[str, str, pathlib.Path]]:
    """Accounts and node files for a camera at each of ``desks``; returns (device id, desk,
    node file) for each. Reload the broker afterwards. ``ca`` is the CA of an
    ``https://`` ``api_url`` (see :func:`sim.speakers.provision_speakers`)."""
    root.mkdir(parents=True, exist_ok=True)
    made = []
    for desk in desks:
        device = camera_id(desk)
        identity = DeviceIdentity(device, "camera", new_password())
        broker.set_user(device, identity.password)
        node_file = root / f"{device}.toml"
        node_file.write_text(node_file_text(
            identity, mqtt_host="127.0.0.1", mqtt_port=broker.port,
            data_dir=str((root / device).resolve()),
            runtime={"telemetry_interval": 10, "clock_check": "always", "status_port": 0},
            role_settings={**DEMO_CAMERA, "controller_url": api_url,
                           "controller_ca": str(ca) if ca else None}))
        made.append((device, desk, node_file))
    return made
