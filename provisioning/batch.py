"""Many devices at once, from a CSV the commune's technician keeps: ``id,role,hamlet,desk,
label`` (a header row; hamlet, desk and label may be empty).

Every row is checked before anything is written: a bad row is named by its line
and column, and no bundle is made.
"""

from __future__ import annotations

import csv
import io
import pathlib

from provisioning.bundle import Bundle, Device, Site, check, write_bundle

COLUMNS = ("id", "role", "hamlet", "desk", "label")
MAX_ROWS = 1000


def read_devices(text: str, *, source: str = "CSV") -> list[Device]:
    """The devices of a CSV; ValueError naming the line and what was wrong."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel's BOM
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("id", "role") if c not in header]
    if missing:
        raise ValueError(f"{source}: the header lacks {', '.join(missing)} (expected "
                         f"{','.join(COLUMNS)})")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ValueError(f"{source}: unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header
    devices: list[Device] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if len(devices) >= MAX_ROWS:
            raise ValueError(f"{source}: more than {MAX_ROWS} devices; split the file")
        if row.get(None):  # type: ignore[call-overload]
            raise ValueError(f"{source} line {line}: more cells than the header's "
                             f"{len(header)} columns")
        cells = {k: (v or "").strip() or None for k, v in row.items() if k in COLUMNS}
        if not any(cells.values()):
            continue
        device = Device(cells.get("id") or "", cells.get("role") or "", cells.get("hamlet"),
                        cells.get("desk"), cells.get("label"))
        try:
            check(device)
        except ValueError as exc:
            raise ValueError(f"{source} line {line}: {exc}") from None
        if device.device_id in seen:
            raise ValueError(f"{source} line {line}: id {device.device_id!r} is already on "
                             f"line {seen[device.device_id]}")
        seen[device.device_id] = line
        devices.append(device)
    if not devices:
        raise ValueError(f"{source}: no devices")
    return devices


def write_batch(devices: list[Device], site: Site, out: pathlib.Path,
                wheels: dict[str, pathlib.Path]) -> list[Bundle]:
    """One folder per device under ``out`` (``<id>/boot``, its card, its label)."""
    return [write_bundle(d, site, out / d.device_id, wheels=wheels[d.role]) for d in devices]
