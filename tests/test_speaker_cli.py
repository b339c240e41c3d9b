"""The operator's ``thanthien-controller broadcast`` commands against the running API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from speaker_support import TZ, noise_wav

from controller.cli import main as controller_main


def cli(bed, *args: str) -> list[str]:
    return ["broadcast", "--api", bed.ctl.api_url, "--token", bed.token, *args]


def test_broadcast_cli_adds_lists_exports_and_cancels(bed, capsys):
    bed.ctl.registry.add("spk-cli-1", "speaker", hamlet="an-binh")
    audio = bed.upload(noise_wav(1.0)).json()
    quiet_from = bed.ctl.broadcasts.quiet_hours[0]
    start = (dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), quiet_from, TZ)
             - dt.timedelta(hours=2)).replace(tzinfo=None).isoformat(timespec="minutes")
    assert controller_main(cli(bed, "add", str(audio["id"]), "--start", start, "--rrule",
                               "FREQ=WEEKLY;INTERVAL=2", "--hamlet", "an-binh",
                               "--title", "Bản tin tuần")) == 0
    created = json.loads(capsys.readouterr().out)
    assert (created["title"], created["rrule"]) == ("Bản tin tuần", "FREQ=WEEKLY;INTERVAL=2")
    assert controller_main(cli(bed, "list")) == 0
    assert [b["id"] for b in json.loads(capsys.readouterr().out)] == [created["id"]]
    assert controller_main(cli(bed, "receipts", str(created["id"]), "--csv")) == 0
    assert capsys.readouterr().out.startswith("broadcast,title,level,occurrence")
    assert controller_main(cli(bed, "cancel", str(created["id"]))) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert controller_main(cli(bed, "emergency", str(audio["id"]), "--hamlet", "an-binh")) == 0
    assert json.loads(capsys.readouterr().out)["level"] == "emergency"


def test_broadcast_cli_sets_volume_and_quiet_hours(bed, capsys):
    bed.ctl.registry.add("spk-cli-2", "speaker", hamlet="cay-gao")
    assert controller_main(cli(bed, "volume", "--hamlet", "cay-gao", "0.4")) == 0
    assert json.loads(capsys.readouterr().out)["speakers"] == ["spk-cli-2"]
    assert controller_main(cli(bed, "quiet-hours", "22:00", "05:00")) == 0
    assert json.loads(capsys.readouterr().out)["quiet_hours"] == ["22:00", "05:00"]
    with pytest.raises(SystemExit):
        controller_main(cli(bed, "volume", "--speaker", "spk-cli-2", "1.5"))
    assert "0 to 1" in capsys.readouterr().err


def test_broadcast_cli_reports_refusals_readably(bed, capsys):
    audio = bed.upload(noise_wav(1.0)).json()
    with pytest.raises(SystemExit) as exit_info:
        controller_main(cli(bed, "add", str(audio["id"]), "--start", "2020-01-01T07:00"))
    assert exit_info.value.code == 2
    assert "no occurrence in the future" in capsys.readouterr().err


def test_served_controller_lets_devices_download_audio_added_by_the_cli(tmp_path, broker):
    """Regression: ``serve`` had no way to get the broker's password file, so every speaker's
    audio download was refused in production."""
    import subprocess
    import sys

    import requests

    from conftest import CONTROLLER_PASSWORD, DEVICE_PASSWORD, wait_for
    data = tmp_path / "data"
    (tmp_path / "bulletin.wav").write_bytes(noise_wav(1.0))
    assert controller_main(["--data", str(data), "audio", "add",
                            str(tmp_path / "bulletin.wav"), "--title", "Bản tin"]) == 0
    sha = next((data / "audio").glob("*.wav")).stem
    broker.add_device("spk-serve-1")
    (tmp_path / "pw").write_text(CONTROLLER_PASSWORD)
    url_file = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "--data", str(data),
                             "serve", "--mqtt-port", str(broker.port), "--mqtt-password-file",
                             str(tmp_path / "pw"), "--http-port", "0", "--url-file",
                             str(url_file), "--broker-passwd", str(broker.config.passwd)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = wait_for(lambda: url_file.exists() and url_file.read_text().strip(), timeout=20)
        resp = requests.get(f"{url}/api/v1/audio/files/{sha}",
                            auth=("spk-serve-1", DEVICE_PASSWORD), timeout=10)
        assert resp.status_code == 200
        assert resp.content[:4] == b"RIFF"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_device_add_writes_a_speaker_node_file_with_the_controller_url(tmp_path):
    from node_runtime.config import load_config
    out = tmp_path / "loa-an-binh-1.toml"
    assert controller_main(["--data", str(tmp_path / "data"), "device", "add", "loa-an-binh-1",
                            "--role", "speaker", "--hamlet", "an-binh", "--broker-dir",
                            str(tmp_path / "broker"), "--out", str(out),
                            "--controller-url", "https://10.0.0.2:8443"]) == 0
    config = load_config(out)
    assert config.role == "speaker"
    assert config.role_settings == {"controller_url": "https://10.0.0.2:8443"}
