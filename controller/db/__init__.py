"""The controller's SQLite database: connections, the single writer, the schema.

- :mod:`controller.db.connection`: opening the file, the integrity check at start,
  and the bounded pool of read-only connections.
- :mod:`controller.db.writer`: the one thread that writes, in group commits.
- :mod:`controller.db.migrations`: the ordered list of schema changes, whose
  statements live in one module per domain under :mod:`controller.db.schema`.
"""
