"""The hamlet loudspeaker node (``thanthien-speaker``).

Keeps its own schedule and the audio it needs, plays on time from its own
clock even when the network is down, switches the amplifier only around
sound, and reports a receipt for every occurrence through the durable outbox.
"""
