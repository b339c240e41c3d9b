"""Who may use the controller's API: bearer tokens (people and programs)."""
