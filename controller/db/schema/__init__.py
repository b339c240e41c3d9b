"""Schema statements, one module per domain; applied by controller.db.migrations."""
