"""Mosquitto, configured and (for demos and tests) run by the project.

:mod:`controller.broker.config` writes the broker's files (config, accounts,
ACL); :mod:`controller.broker.process` runs one as a child process.
"""

from controller.broker.config import CONTROLLER_USER, BrokerConfig
from controller.broker.process import Mosquitto, free_port, signal_reload

__all__ = ["CONTROLLER_USER", "BrokerConfig", "Mosquitto", "free_port", "signal_reload"]
