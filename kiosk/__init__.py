"""The rating kiosk (issue #3): not built yet."""
