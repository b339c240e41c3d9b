"""Demo hamlet speakers: real ``thanthien-speaker`` processes playing into ALSA files.

``python -m sim.speakers`` runs a broker, the controller and six speakers in
three hamlets, uploads a generated bulletin and schedules it daily at 06:30
plus once a minute from now, then prints where to look. ``make demo``
(:mod:`sim.demo`) uses :func:`provision_speakers` for its speakers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Sequence
from typing import Any

from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from provisioning.identity import DeviceIdentity, new_password
from provisioning.node_file import node_file_text

log = logging.getLogger(__name__)

HAMLETS = ("an-binh", "binh-loc", "cay-gao")


def alsa_config(folder: pathlib.Path, device_ids: Sequence[str]) -> pathlib.Path:
    """An ALSA config with one ``type file`` PCM per speaker: ``<folder>/<id>.raw``."""
    lines = ["</usr/share/alsa/alsa.conf>"]
    for device in device_ids:
        lines.append(f'pcm.{device.replace("-", "_")} {{ type file; slave.pcm "null"; '
                     f'file "{folder}/{device}.raw"; format "raw"; truncate false }}')
    path = folder / "asound.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_speakers(ctl: Any, broker: BrokerConfig, mosquitto: Mosquitto, folder: pathlib.Path,
                   count: int = 6) -> list[subprocess.Popen[bytes]]:
    """Provision ``count`` speakers across the hamlets and start their processes."""
    conf, made = provision_speakers(folder, broker, ctl.api_url, count)
    mosquitto.reload()
    time.sleep(0.3)
    env = {**os.environ, "ALSA_CONFIG_PATH": str(conf)}
    procs = []
    for device, hamlet, node_file in made:
        ctl.registry.add(device, "speaker", hamlet=hamlet, label=f"Loa ấp {hamlet}")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "speaker_node.cli", "--config", str(node_file),
             "--log-level", "WARNING"], env=env, stderr=subprocess.DEVNULL))
    return procs


def provision_speakers(root: pathlib.Path, broker: BrokerConfig, api_url: str, count: int,
                       ca: pathlib.Path | None = None
                       ) -> tuple[pathlib.Path, list[tuple[str, str, pathlib.Path]]]:
    """Accounts and node files for ``count`` speakers of a running controller; returns the
    ALSA config they need and (device id, hamlet, node file) for each. Reload the broker.

    ``ca`` is the CA of an ``https://`` ``api_url``; it goes in ``[speaker]
    controller_ca``, not ``[mqtt] tls_ca``, since the demo's broker is plain MQTT on the
    loopback and ``tls_ca`` would turn TLS on for it."""
    root.mkdir(parents=True, exist_ok=True)
    devices = [f"loa-{HAMLETS[n % len(HAMLETS)]}-{n // len(HAMLETS) + 1}" for n in range(count)]
    conf = alsa_config(root.resolve(), devices)
    made = []
    for n, device in enumerate(devices):
        identity = DeviceIdentity(device, "speaker", new_password())
        broker.set_user(device, identity.password)
        node_file = root / f"{device}.toml"
        node_file.write_text(node_file_text(
            identity, mqtt_host="127.0.0.1", mqtt_port=broker.port,
            data_dir=str((root / device).resolve()),
            runtime={"telemetry_interval": 10, "clock_check": "always", "status_port": 0},
            role_settings={"controller_url": api_url, "output_device": device.replace("-", "_"),
                           "controller_ca": str(ca) if ca else None}))
        made.append((device, HAMLETS[n % len(HAMLETS)], node_file))
    return conf, made


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with text ``fields`` and one ``file``; (body, type)."""
    boundary = "thanthien-" + new_password()[:16]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def bulletin_wav(seconds: float = 6.0) -> bytes:
    """A stand-in bulletin: a three-note chime, then a warbling tone, 22.05 kHz."""
    import numpy as np
    rate = 22050
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.3 * np.sin(2 * np.pi * (440 + 60 * np.sin(2 * np.pi * 0.5 * t)) * t)
    for k, f in enumerate((523.25, 659.25, 783.99)):
        part = (t >= 0.4 * k) & (t < 0.4 * (k + 1))
        signal[part] = 0.5 * np.sin(2 * np.pi * f * t[part])
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((signal * 32767).astype("<i2").tobytes())
    return out.getvalue()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from controller.access import tokens as auth
    from controller.service import Controller
    from node_runtime.config import MqttSettings
    parser = argparse.ArgumentParser(prog="python -m sim.speakers")
    parser.add_argument("--dir", default=".demo/speakers")
    parser.add_argument("--speakers", type=int, default=6)
    parser.add_argument("--http-port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)
    folder = pathlib.Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    broker = BrokerConfig(folder / "broker", port=free_port())
    password = new_password()
    broker.set_user(CONTROLLER_USER, password)
    mosquitto = Mosquitto(broker)
    mosquitto.start()
    mqtt = MqttSettings(port=broker.port, username=CONTROLLER_USER, password=password)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with Controller(folder / "controller.db", mqtt, http_port=args.http_port,
                        broker_passwd=broker.passwd) as ctl:
            ctl.start()
            token = ctl.writer.call(lambda db: auth.create_token(db, "demo-radio"))
            procs = start_speakers(ctl, broker, mosquitto, folder / "nodes", args.speakers)
            audio = ctl.audio_library.add(bulletin_wav(), "Bản tin mẫu (demo)", "demo.wav")
            soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
            local = (soon + dt.timedelta(hours=7)).replace(tzinfo=None, second=0,
                                                            microsecond=0)  # 30-90 s away
            first = ctl.broadcasts.create({"audio_id": audio["id"], "start": local.isoformat(),
                                           "targets": {"hamlets": ["an-binh", "binh-loc"]},
                                           "title": "Bản tin thử"})
            tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7, days=1)).date()
            daily = ctl.broadcasts.create({"audio_id": audio["id"],
                                           "start": f"{tomorrow}T06:30", "rrule": "FREQ=DAILY",
                                           "title": "Bản tin sáng hằng ngày"})
            print(f"API {ctl.api_url}/api/v1  token {token}\n"
                  f"speakers write PCM (48 kHz s16le mono) to {folder}/nodes/<id>.raw\n"
                  f"broadcast {first['id']} at {local:%H:%M} local to an-binh and binh-loc; "
                  f"daily broadcast {daily['id']} at 06:30\n"
                  f"receipts: thanthien-controller broadcast --api {ctl.api_url} --token "
                  f"{token} receipts {first['id']}\nCtrl-C to stop.", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        mosquitto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
