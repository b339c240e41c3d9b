"""A device's bundle made by the controller, for the console: one device at a time.

The same bundle ``thanthien-provision`` writes (:mod:`provisioning.bundle`), from the
site settings the controller is given for its devices (``serve --device-site
FILE``: the broker's address as devices reach it, the CA, the controller's URL,
Wi-Fi) and the wheelhouses prepared on this machine. Online, the card is
imported at once (or, for enrolment by claim, a token is made and put in the
bundle). The answer is a zip of the boot partition's files and the label.
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import tempfile
import threading
import zipfile
from typing import Any

from controller.errors import Busy, InvalidRequest, _t
from controller.fleet.cards import Cards
from controller.fleet.enrolment import Enrolment
from provisioning import wheelhouse
from provisioning.bundle import Device, write_bundle
from provisioning.site import make_site, read_site, wheels_cache

log = logging.getLogger(__name__)


class Bundles:
    def __init__(self, cards: Cards, enrolment: Enrolment, site_file: pathlib.Path | None):
        self.cards = cards
        self.enrolment = enrolment
        self.site_file = site_file
        self._one = threading.Lock()  # a bundle copies tens of MB: one at a time

    def make(self, body: dict[str, Any], user: str | None) -> pathlib.Path:
        """The zip for ``body`` (device_id, role, hamlet, desk, label, os, wifi_ssid,
        wifi_key, apn, enrol, replace), in a temporary folder the caller removes."""
        if self.site_file is None:
            raise InvalidRequest(_t("the controller has no site settings for devices' cards: "
                                    "start it with serve --device-site FILE"))
        if not self._one.acquire(blocking=False):
            raise Busy(_t("another bundle is being made; try again in a moment"))
        try:
            return self._make(body, user)
        finally:
            self._one.release()

    def _make(self, body: dict[str, Any], user: str | None) -> pathlib.Path:
        assert self.site_file is not None
        try:
            values = read_site(self.site_file)
            for key in ("os", "wifi_ssid", "wifi_key", "apn"):
                if body.get(key):
                    values[key] = body[key]
            site = make_site(values)
            device = Device(body["device_id"], body["role"], body.get("hamlet") or None,
                            body.get("desk") or None, body.get("label") or None)
            target = wheelhouse.Target(*wheelhouse.TARGETS[site.release])
            wheels = wheels_cache(values) / f"{device.role}-{target.name}"
            wheelhouse.stamp_of(wheels, device.role)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        token = None
        if body.get("enrol"):
            token = self.enrolment.create(device.device_id, device.role, hamlet=device.hamlet,
                                          desk=device.desk, label=device.label,
                                          user=user)["token"]
        folder = pathlib.Path(tempfile.mkdtemp(prefix="thanthien-bundle-"))
        try:
            out = folder / device.device_id
            bundle = write_bundle(device, site, out, wheels=wheels, enrol_token=token)
            if site.controller_url:
                from provisioning.label import LabelInfo, write_label
                write_label(LabelInfo(device.device_id, device.role, site.controller_url,
                                      device.hamlet, device.desk), out)
            if bundle.card is not None:
                self.cards.import_card(bundle.card, replace=bool(body.get("replace")),
                                       user=user)
            archive = folder / f"{device.device_id}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
                for path in sorted(out.rglob("*")):
                    if path.is_file() and path.suffix != ".json":
                        compress = (zipfile.ZIP_STORED if path.suffix == ".whl"
                                    else zipfile.ZIP_DEFLATED)
                        z.write(path, path.relative_to(out), compress_type=compress)
            shutil.rmtree(out)
            log.info("bundle for %s (%s) made by %s", device.device_id, device.role, user)
            return archive
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def remove(archive: pathlib.Path) -> None:
    """After the zip is sent: its temporary folder goes."""
    shutil.rmtree(archive.parent, ignore_errors=True)


