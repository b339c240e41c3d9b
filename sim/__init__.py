"""Simulated devices and the demo: real node code, simulated people and hardware."""
