"""The hamlet loudspeakers: the audio library, broadcast items and their schedules, pushes to
speakers, and playback receipts."""
