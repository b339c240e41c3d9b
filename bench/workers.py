"""Child processes for the benchmarks: ``python -m bench.workers MODE JSON``.

Modes: ``nodes`` (start node runtimes with prefilled outboxes, report when
all are acked), ``publish`` (raw paho QoS 1 publishers), ``subscribe``
(raw QoS 1 subscriber counting), ``bare`` (one idle node runtime).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def nodes(spec: dict[str, Any]) -> None:
    from node_runtime.config import config_from_dict
    from node_runtime.node import Node
    running = [Node(config_from_dict(raw)) for raw in spec["configs"]]
    for node in running:
        node.start()
    while any(node.outbox.depth for node in running):
        time.sleep(0.01)
    print(json.dumps({"done": time.time()}), flush=True)
    for node in running:
        node.close()


def publish(spec: dict[str, Any]) -> None:
    payload = b"x" * spec["size"]
    threads = []
    for i in range(spec["clients"]):
        def run(i: int = i) -> None:
            # One account per client: the broker makes the username the client id.
            account = f"bench-raw-{spec['id'] * spec['clients'] + i:02d}"
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=account,
                                 protocol=mqtt.MQTTv5)
            client.username_pw_set(account, spec["password"])
            client.max_inflight_messages_set(spec["window"])
            client.max_queued_messages_set(0)
            client.connect("127.0.0.1", spec["port"])
            client.loop_start()
            topic = f"tt/v1/dev/{account}/events"
            infos = [client.publish(topic, payload, qos=1) for _ in range(spec["count"])]
            for info in infos:
                info.wait_for_publish()
            client.loop_stop()
            client.disconnect()
        threads.append(threading.Thread(target=run))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def subscribe(spec: dict[str, Any]) -> None:
    total = spec["total"]
    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        if state["n"] == 0:
            state["first"] = time.time()
        state["n"] += 1
        if state["n"] >= total:
            state["last"] = time.time()
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-sub", protocol=mqtt.MQTTv5)
    client.username_pw_set("controller", spec["password"])
    client.on_message = on_message
    client.on_connect = lambda c, *a: (c.subscribe("tt/v1/dev/+/events", qos=1),
                                       print(json.dumps({"ready": True}), flush=True))
    client.connect("127.0.0.1", spec["port"])
    client.loop_start()
    done.wait(600)
    print(json.dumps({"first": state["first"], "last": state["last"], "n": state["n"]}),
          flush=True)
    client.loop_stop()


def bare(spec: dict[str, Any]) -> None:
    """One node through the real entry point (node_runtime.cli.run), with no role."""
    from node_runtime.cli import run
    from node_runtime.config import config_from_dict

    class Idle:
        def run(self, stop: threading.Event) -> None:
            print(json.dumps({"ready": True}), flush=True)
            stop.wait(spec.get("seconds", 3600))

    run(config_from_dict(spec["config"]), lambda node: Idle())


if __name__ == "__main__":
    {"nodes": nodes, "publish": publish, "subscribe": subscribe, "bare": bare}[sys.argv[1]](
        json.loads(sys.argv[2]))
