"""``thanthien-provision``: put devices into service from the technician's machine, offline.

  bundle ID --role R ...   one device's boot-partition bundle, card and label
  batch devices.csv ...    the same for every row of a CSV
  wheelhouse --role R      prepare (online, once) the wheels a card carries
  label ID --role R ...    print a device's label again

Site settings (broker, CA, controller, Wi-Fi...) come from flags or a TOML file given
with ``--site`` (its keys are the flags' names with ``_``); flags win.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from provisioning import site, wheelhouse
from provisioning.batch import read_devices, write_batch
from provisioning.bundle import RELEASES, Bundle, Device, Site, write_bundle
from provisioning.site import make_site, read_site
from wire.errors import ThanthienError

ROLES = ("kiosk", "speaker", "camera")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanthien-provision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("bundle", help="one device's bundle, card and label")
    one.add_argument("device_id")
    one.add_argument("--role", required=True, choices=ROLES)
    one.add_argument("--hamlet")
    one.add_argument("--desk", help="kiosks and cameras: the desk id (e.g. quay-1)")
    one.add_argument("--label", help="a free description (e.g. 'Loa chợ An Bình')")
    one.add_argument("--enrol-token", help="enrol by claim with this one-time token "
                     "(thanthien-controller enrol create) instead of a card")
    one.add_argument("--boot", type=pathlib.Path, help="write onto this mounted boot "
                     "partition (needed for Bookworm) instead of OUT/boot")
    batch = sub.add_parser("batch", help="bundles for every device of a CSV "
                           "(id,role,hamlet,desk,label)")
    batch.add_argument("csv", type=pathlib.Path)
    for p in (one, batch):
        _site_flags(p)
        p.add_argument("--out", required=True, type=pathlib.Path)
    wh = sub.add_parser("wheelhouse", help="prepare a role's wheels for a release (online)")
    wh.add_argument("--role", required=True, choices=ROLES)
    wh.add_argument("--os", default="trixie", choices=RELEASES)
    wh.add_argument("--host", action="store_true", help="for this machine instead (tests)")
    wh.add_argument("--wheels-cache", type=pathlib.Path, default=site.DEFAULT_CACHE)
    wh.add_argument("--refresh", action="store_true")
    lab = sub.add_parser("label", help="a device's label (PNG and PDF) again")
    lab.add_argument("device_id")
    lab.add_argument("--role", required=True, choices=ROLES)
    lab.add_argument("--hamlet")
    lab.add_argument("--desk")
    lab.add_argument("--controller-url", required=True)
    lab.add_argument("--date", type=dt.date.fromisoformat)
    lab.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ThanthienError, ValueError, OSError, RuntimeError) as exc:
        parser.exit(2, f"thanthien-provision {args.command}: {exc}\n")


def _site_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=pathlib.Path, help="a TOML file of the settings below")
    p.add_argument("--mqtt-host", help="the broker's name on the commune network")
    p.add_argument("--mqtt-port", type=int)
    p.add_argument("--mqtt-plain", action="store_true", default=None, help="the broker "
                   "speaks plain MQTT (the demo's): the CA checks only the controller")
    p.add_argument("--ca", type=pathlib.Path, help="the commune CA's certificate (the "
                   "controller's /etc/thanthien/tls/ca.crt): TLS on")
    p.add_argument("--controller-url", help="e.g. https://xa-tan-an.local:8443")
    p.add_argument("--wifi-ssid")
    p.add_argument("--wifi-key", help="or the environment's THANTHIEN_WIFI_KEY")
    p.add_argument("--apn", help="a 4G modem's APN (Viettel v-internet, VinaPhone m3-world, "
                   "MobiFone m-wap)")
    p.add_argument("--os", choices=RELEASES, help="Raspberry Pi OS release (default trixie)")
    p.add_argument("--ntp", help="NTP servers, comma-separated")
    p.add_argument("--admin-user", help="the technician's login (default kythuat)")
    p.add_argument("--ssh-key", type=pathlib.Path, help="a public key file for it")
    p.add_argument("--wheels-cache", type=pathlib.Path)
    p.add_argument("--host-wheels", action="store_true", help="carry wheels for this "
                   "machine, not a Pi (to try a card's first boot here: the tests)")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = read_site(args.site) if args.site else {}
    for key in site.KEYS:
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    values.setdefault("wifi_key", os.environ.get("THANTHIEN_WIFI_KEY"))
    return values


def _wheels(role: str, release: str, cache: pathlib.Path, host: bool) -> pathlib.Path:
    target = wheelhouse.Target.host() if host else wheelhouse.Target(
        *wheelhouse.TARGETS[release])
    try:
        return wheelhouse.prepare(role, target, cache)
    except RuntimeError as exc:
        raise RuntimeError(f"no wheelhouse for the {role} on {release} in {cache}, and "
                           f"preparing one failed ({exc}); run 'thanthien-provision "
                           f"wheelhouse --role {role} --os {release}' once while online") from None


def _run(args: argparse.Namespace) -> int:
    if args.command == "wheelhouse":
        target = (wheelhouse.Target.host() if args.host
                  else wheelhouse.Target(*wheelhouse.TARGETS[args.os]))
        folder = wheelhouse.prepare(args.role, target, args.wheels_cache, refresh=args.refresh)
        print(f"wheelhouse for the {args.role} ({target.name}): {folder}")
        return 0
    if args.command == "label":
        from provisioning.label import LabelInfo, write_label
        paths = write_label(LabelInfo(args.device_id, args.role, args.controller_url,
                                      args.hamlet, args.desk, args.date), args.out)
        print("wrote " + " and ".join(str(p) for p in paths))
        return 0
    values = _settings(args)
    where = make_site(values)
    cache = site.wheels_cache(values)
    if args.command == "batch":
        devices = read_devices(args.csv.read_text(encoding="utf-8"), source=str(args.csv))
        wheels = {r: _wheels(r, where.release, cache, args.host_wheels)
                  for r in {d.role for d in devices}}
        bundles = write_batch(devices, where, args.out, wheels)
        for bundle in bundles:
            _labelled(bundle, where, bundle.boot.parent)
        print(f"wrote {len(bundles)} bundles under {args.out}; import the cards with "
              f"'thanthien-controller device import {args.out}/*/*.card.json'")
        return 0
    device = Device(args.device_id, args.role, args.hamlet, args.desk, args.label)
    bundle = write_bundle(device, where, args.out, boot=args.boot,
                          wheels=_wheels(args.role, where.release, cache, args.host_wheels),
                          enrol_token=args.enrol_token)
    _labelled(bundle, where, args.out)
    print(f"wrote the card's files in {bundle.boot}")
    if bundle.card_file:
        print(f"card for the controller: {bundle.card_file} (thanthien-controller device "
              "import it, or the console's Devices page)")
    else:
        print("the device enrols by claim: approve it when it appears as pending")
    return 0


def _labelled(bundle: Bundle, where: Site, out: pathlib.Path) -> None:
    if not where.controller_url:
        return
    from provisioning.label import LabelInfo, write_label
    d = bundle.device
    assert where.controller_url
    write_label(LabelInfo(d.device_id, d.role, where.controller_url, d.hamlet, d.desk), out)


if __name__ == "__main__":
    sys.exit(main())
