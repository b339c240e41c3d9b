"""The operator's loudspeaker commands of ``thanthien-controller``: ``audio`` and ``broadcast``.

``audio add`` works on the controller's data folder directly (the service
need not run). ``broadcast`` commands go through the running service's HTTP
API (``--api``, ``--token`` or ``THANTHIEN_API``/``THANTHIEN_TOKEN``), since
the service pushes schedules to the speakers. The API is HTTPS on port 8443
(default ``https://localhost:8443``); its certificate is checked against
``--ca`` (the commune CA, e.g. ``/etc/thanthien/tls/ca.crt``), else
``REQUESTS_CA_BUNDLE``, else the CAs requests trusts by default.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any

from controller.broadcasts.audio_library import AudioLibrary, list_audio
from controller.db.writer import open_writer
from controller.errors import InvalidRequest

#: The controller's unit serves its API over HTTPS on port 8443 (its certificate names
#: localhost among its names).
DEFAULT_API = "https://localhost:8443"

def add_parser(sub: Any) -> None:
    """Add the ``audio`` and ``broadcast`` subcommands to the controller's parser."""
    audio = sub.add_parser("audio", help="the broadcast audio library")
    asub = audio.add_subparsers(dest="action", required=True)
    add = asub.add_parser("add", help="check, normalise and add an MP3/WAV/OGG/FLAC file")
    add.add_argument("file")
    add.add_argument("--title", required=True)
    asub.add_parser("list", help="list the library")

    cast = sub.add_parser("broadcast", help="schedule broadcasts on the hamlet speakers")
    cast.add_argument("--api", default=os.environ.get("THANTHIEN_API", DEFAULT_API),
                      help="the controller's API (default THANTHIEN_API or %(default)s)")
    cast.add_argument("--token", default=os.environ.get("THANTHIEN_TOKEN"))
    cast.add_argument("--ca", help="the CA certificate the API's is checked against, e.g. "
                      "/etc/thanthien/tls/ca.crt (default: REQUESTS_CA_BUNDLE, else the "
                      "CAs requests trusts)")
    bsub = cast.add_subparsers(dest="action", required=True)
    badd = bsub.add_parser("add", help="schedule an item")
    badd.add_argument("audio_id", type=int)
    badd.add_argument("--start", required=True, help="local time, e.g. 2026-12-01T06:30")
    badd.add_argument("--rrule", help="RFC 5545 recurrence, e.g. FREQ=WEEKLY;BYDAY=MO,WE")
    badd.add_argument("--level", default="normal", choices=("normal", "priority", "emergency"))
    badd.add_argument("--hamlet", action="append", help="target hamlet (repeatable)")
    badd.add_argument("--speaker", action="append", help="target speaker id (repeatable)")
    badd.add_argument("--overlap", default="reject", choices=("reject", "order"))
    badd.add_argument("--title")
    emergency = bsub.add_parser("emergency", help="play an emergency now, repeating")
    emergency.add_argument("audio_id", type=int)
    emergency.add_argument("--hamlet", action="append")
    emergency.add_argument("--speaker", action="append")
    emergency.add_argument("--repeat-s", type=float, default=7200.0)
    emergency.add_argument("--expires-in-s", type=float, default=86400.0)
    emergency.add_argument("--title")
    emergency.add_argument("--replaces", type=int, help="the emergency this one supersedes")
    bsub.add_parser("list", help="list scheduled items")
    receipts = bsub.add_parser("receipts", help="who played an item (CSV with --csv)")
    receipts.add_argument("broadcast_id", type=int)
    receipts.add_argument("--csv", action="store_true")
    cancel = bsub.add_parser("cancel", help="cancel an item everywhere")
    cancel.add_argument("broadcast_id", type=int)
    volume = bsub.add_parser("volume", help="volume (0..1) of a hamlet's speakers or one speaker")
    where = volume.add_mutually_exclusive_group(required=True)
    where.add_argument("--hamlet")
    where.add_argument("--speaker")
    volume.add_argument("volume", type=float)
    quiet = bsub.add_parser("quiet-hours", help="set the nightly quiet hours, e.g. 21:00 05:30")
    quiet.add_argument("begin")
    quiet.add_argument("end")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    """Run an ``audio`` or ``broadcast`` command."""
    if args.command == "audio":
        return _audio(args, data)
    return _broadcast(args)


def _audio(args: argparse.Namespace, data: pathlib.Path) -> int:
    data.mkdir(parents=True, exist_ok=True)
    with open_writer(data / "controller.db") as writer:
        if args.action == "list":
            for a in list_audio(writer.db):
                print(f"{a['id']:4} {a['duration_s']:7.1f} s  {a['loudness_lufs']:6.1f} LUFS  "
                      f"{a['title']}")
            return 0
        library = AudioLibrary(writer, data / "audio")
        path = pathlib.Path(args.file)
        record = library.add_file(path, args.title, path.name)
        print(f"audio {record['id']}: {record['title']} ({record['duration_s']:.1f} s, "
              f"{record['loudness_lufs']:.1f} LUFS → {record['target_lufs']:.0f} LUFS, "
              f"gain {record['gain_db']:+.1f} dB)")
        return 0


def _targets(args: argparse.Namespace) -> dict[str, Any]:
    if args.hamlet:
        return {"hamlets": args.hamlet}
    if args.speaker:
        return {"speakers": args.speaker}
    return {"all": True}


def _broadcast(args: argparse.Namespace) -> int:
    import requests
    if not args.token:
        raise InvalidRequest("an API token is needed: --token or THANTHIEN_TOKEN "
                             "(create one with 'thanthien-controller token create NAME')")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {args.token}"
    # Given with each request: a session's own verify would lose to REQUESTS_CA_BUNDLE.
    tls = {"verify": args.ca} if args.ca else {}
    try:
        return _call(http, args, tls)
    except requests.exceptions.SSLError as exc:
        trusted = args.ca or os.environ.get("REQUESTS_CA_BUNDLE") or "the CAs requests trusts"
        raise InvalidRequest(f"{args.api}: the API's certificate is not one {trusted} "
                             f"vouches for, or TLS failed (give the commune CA with --ca): "
                             f"{exc}") from None


def _call(http: Any, args: argparse.Namespace, tls: dict[str, Any]) -> int:
    base = args.api.rstrip("/") + "/api/v1/broadcasts"
    if args.action == "add":
        body = {"audio_id": args.audio_id, "start": args.start, "rrule": args.rrule,
                "level": args.level, "targets": _targets(args), "overlap": args.overlap,
                "title": args.title}
        resp = http.post(base, json={k: v for k, v in body.items() if v is not None},
                         **tls)
    elif args.action == "emergency":
        body = {"audio_id": args.audio_id, "targets": _targets(args), "repeat_s": args.repeat_s,
                "expires_in_s": args.expires_in_s, "title": args.title,
                "replaces": args.replaces}
        resp = http.post(base + "/emergency",
                         json={k: v for k, v in body.items() if v is not None}, **tls)
    elif args.action == "list":
        resp = http.get(base, **tls)
    elif args.action == "cancel":
        resp = http.delete(f"{base}/{args.broadcast_id}", **tls)
    elif args.action == "volume":
        api = args.api.rstrip("/") + "/api/v1"
        path = (f"/hamlets/{args.hamlet}/volume" if args.hamlet
                else f"/speakers/{args.speaker}/volume")
        resp = http.put(api + path, json={"volume": args.volume}, **tls)
    elif args.action == "quiet-hours":
        resp = http.put(args.api.rstrip("/") + "/api/v1/speakers/quiet-hours",
                        json={"from": args.begin, "to": args.end}, **tls)
    else:
        resp = http.get(f"{base}/{args.broadcast_id}/receipts",
                        params={"format": "csv"} if args.csv else None, **tls)
    if resp.status_code >= 400:
        raise InvalidRequest(resp.json().get("error", resp.text))
    if args.action == "receipts" and args.csv:
        sys.stdout.write(resp.text)
    else:
        print(json.dumps(resp.json(), ensure_ascii=False, indent=2))
    return 0
