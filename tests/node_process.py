"""A node in its own process, for tests that kill it: ``node_process.py CONFIG N``.

Starts the node, accepts N rating events, prints each id as soon as
``emit`` returns (the event is durable then), and keeps running until killed.
"""

import sys
import time

from node_runtime.config import load_config
from node_runtime.node import Node


def main() -> None:
    node = Node(load_config(sys.argv[1]), clock_synced=lambda: True)
    node.start()
    for _ in range(int(sys.argv[2])):
        print(node.emit("rating", {"level": 1, "scale": 4})["id"], flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
