"""The desk camera recorder: not built yet."""
