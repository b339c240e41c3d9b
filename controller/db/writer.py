"""The controller's single writer: every write goes through one thread, in batches.

Tasks queued from the MQTT thread and the API are run together in one
transaction (group commit), then their ``after_commit`` callbacks run:
acks are published only once the events they name are on disk.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import sqlite_utils

from controller.db.connection import connect
from controller.db.migrations import migrate

log = logging.getLogger(__name__)

Task = Callable[[sqlite_utils.Database], Any]


class Writer:
    """A thread that owns the write connection."""

    def __init__(self, db: sqlite_utils.Database, *, max_batch: int = 2000):
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Task, Future[Any], float] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._closed = False
        self.commits = 0
        #: The last failed batch's error and when, cleared by the next commit (health).
        self.last_error: tuple[float, str] | None = None
        #: How long the last batch waited in the queue before it ran, in seconds.
        self.lag_s = 0.0
        #: Called after each batch: ``hook(committed)``, in the writer thread.
        self.batch_hooks: list[Callable[[bool], None]] = []

    def start(self) -> None:
        self._thread.start()

    def submit(self, task: Task) -> Future[Any]:
        """Queue ``task(db)``; the future resolves after its transaction commits."""
        future: Future[Any] = Future()
        self._queue.put((task, future, time.monotonic()))
        return future

    @property
    def queued(self) -> int:
        """Tasks waiting for the writer (approximate)."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, task: Task, timeout: float = 30) -> Any:
        """Run ``task(db)`` in the writer and wait for its committed result."""
        return self.submit(task).result(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(more)
            self.lag_s = time.monotonic() - batch[0][2]
            self._commit([(task, future) for task, future, _ in batch])

    def _commit(self, batch: list[tuple[Task, Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.conn:
                self.db.execute("BEGIN IMMEDIATE")
                for task, future in batch:
                    self.db.execute("SAVEPOINT task")
                    try:
                        results.append((future, task(self.db), None))
                        self.db.execute("RELEASE task")
                    except Exception as exc:  # one bad task must not undo the others
                        self._undo_task(exc)
                        results.append((future, None, exc))
        except Exception as exc:
            log.exception("write batch of %s failed", len(batch))
            self.last_error = (time.time(), f"{type(exc).__name__}: {exc}")
            self._run_hooks(False)
            for _, future in batch:
                future.set_exception(exc)
            return
        self.commits += 1
        # A task refused by the database itself (disk full, I/O error) is a storage
        # failure, not a bad request: health reports it until a write succeeds again.
        failed = [e for _, _, e in results if isinstance(e, sqlite3.OperationalError)]
        if failed:
            self.last_error = (time.time(), f"{type(failed[0]).__name__}: {failed[0]}")
        elif results:
            self.last_error = None
        self._run_hooks(True)
        for future, value, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def _undo_task(self, exc: Exception) -> None:
        try:
            self.db.execute("ROLLBACK TO task")
            self.db.execute("RELEASE task")
        except sqlite3.OperationalError:
            # SQLite already undid the whole transaction (disk full, I/O error): the
            # batch fails with the task's own error, which names the cause.
            raise exc from None

    def _run_hooks(self, committed: bool) -> None:
        for hook in self.batch_hooks:
            try:
                hook(committed)
            except Exception:
                log.exception("batch hook failed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)


@contextlib.contextmanager
def open_writer(db_path: str | pathlib.Path) -> Iterator[Writer]:
    """A started writer on a migrated database, for tools (CLI, demo) used beside the service."""
    db_path = pathlib.Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(db_path)
    try:
        migrate(db)
        writer = Writer(db)
        writer.start()
        try:
            yield writer
        finally:
            writer.close()
    finally:
        db.close()
