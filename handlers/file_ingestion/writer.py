"""Load a batch's files while the rest of the batch is still being read: one writer thread, one transaction.

Reading and validating a batch is CPU in this process; writing its rows (COPY, index updates) is mostly the
database's work. ``BatchWriter`` overlaps the two: every message whose files are all valid is offered as soon as it
is ready, and a writer thread loads whatever has been offered since its last chunk (``load.load_chunk``) while the
handler goes on with the other messages. psycopg releases the GIL while it waits for the server, so the database
works on one chunk while the next is parsed.

Every chunk of a batch runs in one transaction on the environment's kept connection, committed by ``finish`` after
the last message was offered: the batch is in the tables whole, or not at all. A write failure is kept and raised
by ``finish`` (the handler then fails every message of the batch); ``abort`` rolls back a batch the handler gives
up on. The transaction stays open while the batch is read, so another environment writing one of its files waits
for the commit (seconds, within the statement timeout). Chunks of two concurrent batches may take row locks in
different orders; if they deadlock on the same files, PostgreSQL aborts one transaction, that batch fails whole
and SQS retries it, adding nothing twice.

Memory: a file's COPY text is dropped as soon as its chunk is written, and the text offered but not yet written is
bounded (``max_pending_chars``, ``PENDING_FILES`` files at the size limit in the handler): an offer beyond it waits,
on its reading thread, until the writer catches up. So a batch never holds more than that, whatever its size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager
from typing import Any

from psycopg import Connection

from file_ingestion import load

ConnectionSource = Callable[[], AbstractContextManager[Connection[Any]]]
# Files' worth of COPY text (at the size limit) offered and not yet written before an offer waits.
PENDING_FILES = 4


class _Finish:
    """Queue marker: nothing more will be offered; commit."""


class _Abort(Exception):
    """Queue marker and the exception that rolls the writer's transaction back."""


class BatchWriter:
    """One batch's transaction, fed message by message; the connection is taken once the batch has something to read.

    ``thread`` runs the writing: a single-thread executor kept for the life of the execution environment, so a
    batch does not pay for starting a thread.
    """

    def __init__(self, connection: ConnectionSource, thread: Executor, *, max_pending_chars: int | None = None) -> None:
        self._connection = connection
        self._max_pending = max_pending_chars
        self._pending = 0  # characters of COPY text offered and not yet written (or dropped)
        self._room = threading.Condition()
        self._executor = thread
        self._offers: queue.SimpleQueue[Sequence[load.ParsedFile] | _Finish | _Abort] = queue.SimpleQueue()
        self._running: Future[None] | None = None
        self._error: BaseException | None = None
        self._offering = threading.Lock()  # offers come from the reading threads: one transaction, counted once
        self._closed = False  # the writer thread has taken the finish or abort marker
        self._stopped = False  # finish() or abort() was called: the batch's transaction is over
        self.result = load.LoadResult()
        self.files = 0

    def begin(self) -> None:
        """Take the connection and open the batch's transaction now, ahead of the first offer (returns at once).

        The handler calls it as soon as a message announces objects to read, so the database is ready for the
        first file instead of starting then; a batch with nothing to read never connects.
        """
        with self._offering:
            self._refuse_when_stopped()
            self._start()

    def offer(self, files: Sequence[load.ParsedFile]) -> None:
        """Queue one message's files for the batch's transaction (returns at once; from any thread).

        Raises after ``finish`` or ``abort``: a late offer would open a transaction that nothing ever ends.
        """
        size = sum(parsed.text_size for parsed in files)
        self._wait_for_room(size)
        with self._offering:
            self._refuse_when_stopped()
            if files:
                self._start()
                self.files += len(files)
                with self._room:
                    self._pending += size
                self._offers.put(files)

    def _wait_for_room(self, size: int) -> None:
        """Block while the text already pending and ``size`` exceed the bound (never when nothing is pending)."""
        if self._max_pending is None or not size:
            return
        with self._room:
            while self._pending and self._pending + size > self._max_pending and not self._stopped \
                    and self._error is None:
                self._room.wait(timeout=1)

    def _written(self, files: Sequence[load.ParsedFile]) -> None:
        with self._room:
            self._pending -= sum(parsed.text_size for parsed in files)
            self._room.notify_all()

    def _refuse_when_stopped(self) -> None:
        if self._stopped:
            raise RuntimeError("this batch's writer is finished; its transaction takes no more files")

    def _start(self) -> None:
        if self._running is None:
            self._running = self._executor.submit(self._run)

    def finish(self) -> load.LoadResult:
        """Commit everything offered; raises the write's error, in which case nothing of the batch was written.

        With nothing offered (every file of the batch gone or invalid), the transaction ``begin`` opened is rolled
        back and nothing is raised: the database plays no part in such a batch, even when it is down.
        """
        with self._offering:  # decided together with the last offer: no file is offered after the choice
            self._stopped = True
            committing = self.files > 0
        with self._room:
            self._room.notify_all()
        self._end(_Finish() if committing else _Abort())
        if committing and self._error is not None:
            raise self._error
        return self.result

    def abort(self) -> None:
        """Roll back whatever was written; for a batch the handler gives up on."""
        with self._offering:
            self._stopped = True
        with self._room:
            self._room.notify_all()
        self._end(_Abort())

    def _end(self, marker: _Finish | _Abort) -> None:
        """Hand the writer thread its last marker (once ``_stopped`` is set) and wait for it."""
        if self._running is not None:
            self._offers.put(marker)
            self._running.result()
            self._running = None

    def _run(self) -> None:
        try:
            with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
                while (chunk := self._next_chunk()) is not None:
                    try:
                        load.load_chunk(cursor, chunk, self.result)
                    finally:
                        self._written(chunk)
                    del chunk  # the texts are freed now, not when the next chunk arrives
        except _Abort:
            pass
        except BaseException as error:  # kept for finish(), which raises it in the handler's thread
            self._error = error
            with self._room:
                self._room.notify_all()
            while not self._closed:  # take offers until the handler finishes or aborts: it never waits on us
                item = self._offers.get()
                self._closed = isinstance(item, _Finish | _Abort)
                if not self._closed:
                    self._written(item)  # type: ignore[arg-type]

    def _next_chunk(self) -> list[load.ParsedFile] | None:
        """Every file offered since the last chunk (waiting for at least one); None once finished."""
        chunk: list[load.ParsedFile] = []
        item = self._offers.get()
        while True:
            if isinstance(item, _Finish) and chunk:  # load what came before the finish first
                self._offers.put(item)
                return chunk
            if isinstance(item, _Abort):
                self._closed = True
                raise item
            if isinstance(item, _Finish):
                self._closed = True
                return None
            chunk.extend(item)
            try:
                item = self._offers.get_nowait()
            except queue.Empty:
                return chunk
