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


def test_broadcast_cli_reports_refusals_readably(bed, capsys):
    audio = bed.upload(noise_wav(1.0)).json()
    with pytest.raises(SystemExit) as exit_info:
        controller_main(cli(bed, "add", str(audio["id"]), "--start", "2020-01-01T07:00"))
    assert exit_info.value.code == 2
    assert "no occurrence in the future" in capsys.readouterr().err
