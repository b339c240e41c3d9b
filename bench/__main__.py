"""``make bench``: run every benchmark, print ``BENCH`` lines, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pathlib
import platform

# Each module has run(quick) -> [(name, value, unit, goal, note)].
SUITES = ["bench.foundation", "bench.kiosk", "bench.speaker", "bench.api", "bench.security",
          "bench.documents", "bench.console", "bench.camera", "bench.camera_clip"]
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--only", help="run one suite, e.g. bench.foundation; its rows in "
                        "docs/benchmarks.md are replaced, the others kept (with their run's date)")
    args = parser.parse_args()
    rows = []
    for name in [args.only] if args.only else SUITES:
        for row in importlib.import_module(name).run(quick=args.quick):
            print(f"BENCH {row[0]} {row[1]} {row[2]}", flush=True)
            rows.append((name.split(".")[-1], *row))
    if args.quick:
        return
    if args.only:
        suite = args.only.split(".")[-1]
        kept = [r for r in _documented() if r[0] != suite]
        order = [s.split(".")[-1] for s in SUITES]
        merged = sorted(kept + rows, key=lambda r: order.index(r[0]) if r[0] in order else 99)
        write_doc(merged, note=f"suite {suite} re-run alone at {_now()}")
    else:
        write_doc(rows)


def _now() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _documented() -> list[tuple[str, ...]]:
    """The rows docs/benchmarks.md holds now."""
    if not DOC.exists():
        return []
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] not in ("suite", "---"):
            rows.append(tuple(cells))
    return rows


def write_doc(rows: list[tuple[str, ...]], note: str | None = None) -> None:
    previous = _last_run() if note else None
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; do not edit by hand. Each figure is also printed as",
        "`BENCH <name> <value> <unit>`. Ratios compare against a baseline measured in the",
        "same run on the same machine, so they travel between machines better than the",
        "absolute figures.",
        "",
        previous or (f"Last run: {_now()} on {platform.machine()}, "
                     f"{os.cpu_count()} cores, Python {platform.python_version()}."),
        *(_notes(note) if note else []),
        "",
        "| suite | figure | value | unit | goal | measured as |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {n} | {v} | {u} | {g} | {how} |" for s, n, v, u, g, how in rows]
    DOC.write_text("\n".join(lines) + "\n")


def _notes(note: str) -> list[str]:
    """The notes of suites re-run alone since the last full run, this one's replaced."""
    suite = note.split()[1]
    kept = [line for line in (DOC.read_text().splitlines() if DOC.exists() else [])
            if line.startswith("(suite ") and line.split()[1] != suite]
    return [*kept, f"({note}.)"]


def _last_run() -> str | None:
    """The "Last run:" line of docs/benchmarks.md (kept when one suite is re-run)."""
    if not DOC.exists():
        return None
    return next((line for line in DOC.read_text().splitlines()
                 if line.startswith("Last run:")), None)


if __name__ == "__main__":
    main()
