"""``thanthien-sim``: run a simulated device, or the whole demo."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("kiosk", "demo"):
        print("usage: thanthien-sim {kiosk --config FILE | demo [--kiosks N]}", file=sys.stderr)
        return 2
    if args[0] == "demo":
        from sim.demo import main as demo_main
        return demo_main(args[1:])
    from node_runtime.cli import main as node_main
    from sim.kiosk import attach
    return node_main(attach, args[1:], prog="thanthien-sim kiosk",
                     description="A simulated rating kiosk on the real node runtime.")


if __name__ == "__main__":
    sys.exit(main())
