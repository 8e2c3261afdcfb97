"""The journal's writer thread: one connection, one thread, group commit.

Every database call runs on this thread with SQLAlchemy Core on a synchronous driver (the
standard library's sqlite3, or psycopg 3 for PostgreSQL). A caller's coroutine hands its work
over and is woken once, after the commit: one thread hop per transition. Writes that arrive
while a commit is in progress are committed together in the next transaction (group commit); if
that shared transaction fails, each of them is retried in a transaction of its own so one bad
change never takes others down with it. A SQLite file that is no longer the one opened (deleted,
moved, replaced) is noticed after the next commit, and every call fails from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from orderlane.errors import JournalError
from orderlane.events import Event
from orderlane.journal import Committed, JournalFileLostError, SignalTakenError
from orderlane.journal.fastpath import FastPath, execute
from orderlane.journal.stats import CommitStats
from orderlane.positions import Position

__all__ = ["REPLACED", "Connected", "Group", "JournalFile", "Refused", "Writer"]

T = TypeVar("T")
log = logging.getLogger("orderlane.journal")
#: One outcome of a piece of work: the work, its result, the error it raised.
Outcome = tuple["_Work", Any, BaseException | None]


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


@attrs.define
class JournalFile:
    """The SQLite file a journal opened, known by device and inode, and its write-ahead log."""

    path: str
    main: tuple[int, int] | None
    wal: tuple[int, int] | None = None

    @classmethod
    def opened(cls, path: str) -> JournalFile:
        return cls(path, _file_id(path), _file_id(f"{path}-wal"))

    def problem(self) -> str | None:
        """What became of the file, if it is no longer the one opened; None while it is."""
        now = _file_id(self.path)
        if now is None:
            return "is gone (deleted or moved, or its directory was)"
        if now != self.main:
            return REPLACED
        wal = _file_id(f"{self.path}-wal")
        if self.wal is None:
            self.wal = wal  # SQLite makes the log at the first write; it stays while we are open
        elif wal != self.wal:
            return "lost its write-ahead log (the -wal file was deleted or replaced)"
        return None

    def set_log_aside(self, suffix: str) -> str | None:
        """Move this journal's write-ahead log away from a path where another file now stands
        (SQLite would apply its pages to that file, corrupting it); returns where it went."""
        wal = f"{self.path}-wal"
        if self.wal is None or _file_id(wal) != self.wal:
            return None
        aside = f"{wal}.{suffix}"
        os.replace(wal, aside)
        return aside


REPLACED = "was replaced by another file"


@attrs.define
class Connected:
    """What opening the database made: the engine, the writer's connection, and for SQLite the
    file opened (checked around every write transaction)."""

    engine: sa.Engine
    conn: sa.Connection
    file: JournalFile | None = None


@attrs.define
class _Work:
    fn: Callable[[sa.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    #: Runs its statements only on the group's driver cursor (never through SQLAlchemy).
    driver_only: bool = False


class Refused(Exception):
    """A write refused before it wrote anything (its ``error`` goes to the caller); the rest of
    its group commit stands."""

    def __init__(self, error: JournalError) -> None:
        super().__init__(str(error))
        self.error = error


@attrs.define
class Group:
    """What the writes of one transaction share: the driver's cursor and the statements of the
    write path, the positions they moved (read once per transaction, the row stays locked until
    the commit), their events (written together before the commit)."""

    cursor: Any
    fast: FastPath
    positions: dict[tuple[str, str], Position] = attrs.Factory(dict)
    events: list[tuple[Any, ...]] = attrs.Factory(list)


class Writer:
    """The thread that runs every database call of one journal, writes in group commits.

    ``aside_suffix`` names where a lost SQLite file's write-ahead log is moved (``-wal.SUFFIX``).
    """

    def __init__(self, *, max_batch: int, aside_suffix: str) -> None:
        self._max_batch = max_batch
        self._aside_suffix = aside_suffix
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        #: Runs on the event loop after each commit, with the committed events, in commit order.
        self.listener: Callable[[Sequence[Event]], None] | None = None
        #: Writer thread only: the statements of the write path, and the transaction's group.
        self._fast_path: FastPath | None = None
        self.group: Group | None = None
        self.commits = 0  # transactions committed, for stats and tests of group commit
        self.commit_stats = CommitStats()  # their durations and sizes, for metrics
        #: Writer thread only: the SQLite file opened, checked around every write transaction,
        #: and the error every call gets once it is no longer the file at the journal's path.
        self._file: JournalFile | None = None
        self._lost: JournalFileLostError | None = None

    # ---------------------------------------------------------------- lifecycle

    async def open(
        self, connect: Callable[[], Connected], prepare: Callable[[sa.Connection], None]
    ) -> None:
        """Start the thread, ``connect`` on it, then ``prepare`` the connection (check and
        migrate the schema); an error of either is raised, the thread ended."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="orderlane-journal", daemon=True)
        self._thread.start()

        def connected(_: Any) -> None:
            made = connect()
            self._engine, self._conn, self._file = made.engine, made.conn, made.file
            prepare(made.conn)

        try:
            await self.submit(connected, write=False)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def _shutdown(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._engine is not None:
            self._engine.dispose()
        self._conn = self._engine = None

    # ---------------------------------------------------------------- the thread

    def submit(
        self, fn: Callable[[sa.Connection], T], *, write: bool, driver_only: bool = False
    ) -> asyncio.Future[T]:
        """Run ``fn(connection)`` on the thread, in a write transaction (shared with other
        writes) or a read-only one; the future is resolved on the event loop. ``driver_only``
        work runs its statements only on the group's driver cursor (:attr:`group`), never
        through SQLAlchemy, so its transaction can be the driver's own."""
        if self._thread is None or self._loop is None:
            raise JournalError("the journal is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Work(fn, write, future, driver_only))
        return future

    def _run(self) -> None:
        carry: _Work | None = None
        try:
            while True:
                item = carry if carry is not None else self._queue.get()
                carry = None
                if item is None:
                    return
                if not item.write:
                    self._run_read(item)
                    continue
                batch, stop = [item], False
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not None and nxt.write:
                        batch.append(nxt)
                        continue
                    stop, carry = nxt is None, nxt
                    break
                self._run_writes(batch)
                if stop:
                    return
        finally:
            self._shutdown()

    def _run_read(self, item: _Work) -> None:
        try:
            if self._lost is not None:
                raise self._lost
            if self._conn is None:
                result = item.fn(None)  # type: ignore[arg-type]
            else:
                self._conn.info["read_only"] = True
                try:
                    with self._conn.begin():
                        result = item.fn(self._conn)
                finally:
                    self._conn.info["read_only"] = False
        except BaseException as error:  # delivered to the caller
            self._deliver([(item, None, error)])
        else:
            self._deliver([(item, result, None)])

    def _run_writes(self, batch: list[_Work]) -> None:
        if self._lost is not None:  # the file is checked after each commit (_durable)
            self._deliver([(item, None, self._lost) for item in batch])
            return
        assert self._conn is not None
        conn = self._conn
        if len(batch) > 1:
            try:
                began = time.perf_counter()
                driver_only = all(item.driver_only for item in batch)
                with _transaction(conn, driver_only=driver_only) as cursor:
                    group = self.group = Group(cursor, self._fast(conn))
                    grouped = [self._run_in_group(conn, item) for item in batch]
                    group.fast.write_events(group.cursor, group.events)
                    self._committing(len(batch))
            except Exception:
                log.debug("group commit of %d changes failed; committing one by one", len(batch))
            else:
                self.commits += 1
                self.commit_stats.record(time.perf_counter() - began, len(batch))
                self._deliver(self._durable(grouped))
                return
            finally:
                self.group = None
        outcomes = [self._run_alone(conn, item) for item in batch]
        self._deliver(self._durable(outcomes))

    def _run_alone(self, conn: sa.Connection, item: _Work) -> Outcome:
        """One change in a transaction of its own. A transaction PostgreSQL ended to break a
        lock cycle with another process (a deadlock's victim, or a serialization failure) wrote
        nothing: it is run again, a few times, before its error reaches the caller."""
        for attempt in range(1, VICTIM_ATTEMPTS + 1):
            try:
                began = time.perf_counter()
                with _transaction(conn, driver_only=item.driver_only) as cursor:
                    group = self.group = Group(cursor, self._fast(conn))
                    result = item.fn(conn)
                    group.fast.write_events(group.cursor, group.events)
            except Refused as refused:
                return item, None, refused.error
            except Exception as error:
                if attempt < VICTIM_ATTEMPTS and _lock_cycle_victim(error):
                    log.info(
                        "a transaction broke a lock cycle with another process; again (%d)", attempt
                    )
                    time.sleep(0.005 * attempt)
                    continue
                return item, None, error
            else:
                self.commits += 1
                self.commit_stats.record(time.perf_counter() - began, 1)
                return item, result, None
            finally:
                self.group = None
        raise AssertionError("unreachable: the last attempt returns")

    def _check_file(self) -> None:
        """Raise :class:`JournalFileLostError` if the SQLite file opened is no longer the one at
        the journal's path (a write to it would reach a file nobody can read any more)."""
        if self._lost is not None:
            raise self._lost
        if self._file is None:
            return
        problem = self._file.problem()
        if problem is None:
            return
        path = self._file.path
        self._lost = JournalFileLostError(
            f"the journal file {path} {problem} while this engine had it open: its writes no "
            "longer reach the journal at that path, so nothing more is sent or booked. Stop "
            f"this engine, restore the journal at {path} (or point --database-url / "
            "ORDERLANE_DATABASE_URL at where it is now) and start again: recovery then settles "
            "the orders it holds. Orders in flight when the file went may be at the broker "
            "without being in any journal: check them at the broker."
        )
        log.critical("%s", self._lost)
        self._abandon(replaced=problem == REPLACED)
        raise self._lost

    def _abandon(self, *, replaced: bool) -> None:
        """Let go of a lost file at once: close the connection (no later call uses it), and if
        another file now stands at the path, move this journal's write-ahead log out of its way
        so that nobody opening that file gets the lost journal's pages applied to it."""
        assert self._file is not None
        self._shutdown()
        if not replaced:
            return  # a moved journal keeps its log beside it, for when it is put back
        try:
            aside = self._file.set_log_aside(self._aside_suffix)
        except OSError as error:  # pragma: no cover - a directory we cannot write to
            log.error("could not move the lost journal's write-ahead log aside: %s", error)
            return
        if aside is not None:
            log.warning(
                "moved the lost journal's write-ahead log to %s, so that it is never applied to "
                "the file now at %s (it holds the lost journal's last commits)",
                aside,
                self._file.path,
            )

    def _durable(self, outcomes: list[Outcome]) -> list[Outcome]:
        """``outcomes`` as they stand once the file is checked again after the commit: a commit
        that reached a file no longer at the journal's path is not durable, and fails."""
        try:
            self._check_file()
        except JournalFileLostError as lost:
            return [(item, None, lost) for item, _result, _error in outcomes]
        return outcomes

    def _committing(self, changes: int) -> None:
        """Runs on the thread inside a group commit's transaction, every change of it written,
        just before its COMMIT (whichever of SQLAlchemy or the driver issues it): nothing by
        default; crash trials kill the process here."""

    @staticmethod
    def _run_in_group(conn: sa.Connection, item: _Work) -> Outcome:
        # A refusal wrote nothing: the group goes on. Any other failure redoes it one by one.
        try:
            return item, item.fn(conn), None
        except Refused as refused:
            return item, None, refused.error

    def _fast(self, conn: sa.Connection) -> FastPath:
        if self._fast_path is None or self._fast_path.dialect is not conn.dialect:
            self._fast_path = FastPath(conn.dialect)
        return self._fast_path

    def _deliver(self, outcomes: list[Outcome]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._resolve, outcomes)

    def _resolve(self, outcomes: list[Outcome]) -> None:
        for item, result, error in outcomes:
            if error is None and isinstance(result, Committed) and self.listener is not None:
                try:
                    self.listener(result.events)
                except Exception:  # pragma: no cover - the bus only queues
                    log.exception("event listener failed")
            if item.future.done():
                continue
            if error is not None:
                item.future.set_exception(_translate(error))
            else:
                item.future.set_result(result)


def _cursor(conn: sa.Connection) -> Any:
    """The driver's own cursor on ``conn`` (in its current transaction)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.cursor()


@contextlib.contextmanager
def _transaction(conn: sa.Connection, *, driver_only: bool) -> Iterator[Any]:
    """A write transaction on ``conn``, yielding the driver's cursor in it.

    SQLAlchemy's transaction (its begin and commit, their events) costs more on the writer
    thread than SQLite's own commit of one transition, so work that runs only on the driver's
    cursor gets the driver's transaction on SQLite: the same ``BEGIN IMMEDIATE`` and ``COMMIT``
    the ``begin`` listener and SQLAlchemy would issue, at the same durability. Any other work,
    and PostgreSQL (where SQLAlchemy also looks after a connection the server dropped), keeps
    SQLAlchemy's.
    """
    if not driver_only or conn.dialect.name != "sqlite":
        with conn.begin():
            yield _cursor(conn)
        return
    cursor = _cursor(conn)
    execute(cursor, "BEGIN IMMEDIATE", ())
    try:
        yield cursor
        execute(cursor, "COMMIT", ())
    except BaseException:
        if cursor.connection.in_transaction:
            try:
                cursor.execute("ROLLBACK")
            except sqlite3.Error as error:  # pragma: no cover - the connection is failing too
                log.error("rolling back a failed journal transaction failed too: %s", error)
        raise


def _hint(error: BaseException | None) -> str:
    """What to do about a database failure, where the cause is a known fault."""
    state = getattr(error, "sqlstate", None)
    text = str(error).lower()
    if state == "57014" and "statement timeout" in text:
        return (
            " (a statement ran or waited for a lock longer than the statement timeout: look for "
            "another session holding locks on the journal's tables; to wait longer, set "
            "EngineConfig.database_statement_timeout)"
        )
    if state in ("53100", "53200") or "disk is full" in text or "no space left" in text:
        return (
            " (the disk is full: free space where the journal lives; a running engine books "
            "what it holds once the journal accepts writes again)"
        )
    if state == "25006" or "readonly" in text or "read-only" in text:
        return " (the journal is read-only: give orderlane write access to it)"
    return ""


#: How often a change whose transaction PostgreSQL ended to break a lock cycle is run in all.
VICTIM_ATTEMPTS = 5
#: deadlock_detected, serialization_failure: the transaction was rolled back, nothing written.
_LOCK_CYCLE_STATES = frozenset({"40P01", "40001"})


def _lock_cycle_victim(error: BaseException) -> bool:
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    return getattr(error.orig, "sqlstate", None) in _LOCK_CYCLE_STATES


def _translate(error: BaseException) -> BaseException:
    if isinstance(error, sa.exc.IntegrityError):
        message = str(error.orig).lower()
        if "signal" in message or "uq_orders_account_signal" in message:
            return SignalTakenError("an order with this signal id is already stored")
        return JournalError(f"the journal refused a change: {error.orig}")
    if isinstance(error, sa.exc.DBAPIError):  # operational, programming, data errors alike
        hint = _hint(error.orig)
        return JournalError(f"the journal database failed: {error.orig}{hint}")
    if isinstance(error, sqlite3.Error) or type(error).__module__.startswith("psycopg"):
        # Raised by the driver itself, outside SQLAlchemy's wrapping (the BEGIN the journal
        # issues straight to it: "database is locked" when another process holds the lock).
        return JournalError(f"the journal database failed: {error}{_hint(error)}")
    if isinstance(error, sa.exc.StatementError) and isinstance(error.orig, (TypeError, ValueError)):
        # A value the column types refuse (a float as money, a naive datetime): the caller's
        # mistake, reported as itself rather than wrapped in the SQL statement that carried it.
        return error.orig
    return error
