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
          "bench.documents", "bench.console"]
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--only", help="run one suite, e.g. bench.foundation")
    args = parser.parse_args()
    rows = []
    for name in [args.only] if args.only else SUITES:
        for row in importlib.import_module(name).run(quick=args.quick):
            print(f"BENCH {row[0]} {row[1]} {row[2]}", flush=True)
            rows.append((name.split(".")[-1], *row))
    if not args.quick and not args.only:
        write_doc(rows)


def write_doc(rows: list[tuple[str, str, float, str, str, str]]) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; do not edit by hand. Each figure is also printed as",
        "`BENCH <name> <value> <unit>`. Ratios compare against a baseline measured in the",
        "same run on the same machine, so they travel between machines better than the",
        "absolute figures.",
        "",
        f"Last run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "| suite | figure | value | unit | goal | measured as |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {n} | {v} | {u} | {g} | {note} |" for s, n, v, u, g, note in rows]
    DOC.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
