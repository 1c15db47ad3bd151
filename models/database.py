"""The database: a fixed pool of driver connections and statements compiled once.

Hot paths (every request, every purchase, every event) never go through the
ORM. A :class:`Query` wraps a SQLAlchemy Core statement built from the SQLModel
tables; it is compiled once per dialect into the driver's own SQL and run on
the raw driver connection (asyncpg's ``fetch``: a prepared statement, cached
per connection; on SQLite, short statements on the event loop's own thread,
see :mod:`models.inline_sqlite`, and the rest on aiosqlite's threads with
``execute_fetchall``, one hand-off a statement).
Rows come back as plain tuples, their values converted only where the driver
and the column type disagree (SQLite's text timestamps and integer booleans,
JSON text).

* :meth:`Database.connection` checks one connection out of the pool for a unit
  of work (a request, an event, a background step) and puts it back after.
* :meth:`Connection.transaction` runs a transaction on it. Writes on SQLite wait
  for the process's writer lock first, then ``BEGIN IMMEDIATE``: writers queue
  in this process instead of spinning in SQLite's busy handler, and a
  transaction that reads then writes never fails with "database is locked".
  The holder of the lock writes on the event loop's thread unless another
  process holds SQLite's lock; then it waits for it on a pool connection.
* :meth:`Database.orm` gives an SQLModel session for cold paths (migrations,
  the CLI's administration, tests), on a small SQLAlchemy engine of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, NoReturn, Protocol

import aiosqlite
import asyncpg
import orjson
from sqlalchemy import JSON, Boolean, ColumnElement, Insert, Table, bindparam, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from models.base import UTCDateTime
from models.inline_sqlite import InlineSqlite, InlineWriter, NotInline, is_busy

__all__ = [
    "SUPPORTED_URLS",
    "Connection",
    "Database",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "IntegrityViolation",
    "Query",
    "Row",
    "UniqueViolation",
    "UnsupportedDatabaseUrl",
    "any_of",
    "insert_into",
]

log = logging.getLogger(__name__)

Row = tuple[Any, ...]

SUPPORTED_URLS = ("sqlite+aiosqlite:///<path>", "postgresql+asyncpg://<user>@<host>/<database>")
_SQLITE_BUSY_TIMEOUT_MS = 30_000


class UnsupportedDatabaseUrl(ValueError):
    """``DATABASE_URL`` names a database or driver the gateway does not run on."""


class DatabaseUnavailable(ConnectionError):
    """The database could not be reached or dropped the connection."""


class DatabaseBusy(DatabaseUnavailable):
    """SQLite: another process held the write lock past the busy timeout. The
    connection is fine; the request may be retried."""


class IntegrityViolation(Exception):
    """A constraint refused the statement (foreign key, check, not null)."""


class UniqueViolation(IntegrityViolation):
    """A unique constraint or index refused the statement."""


# -- statements ---------------------------------------------------------------


class AnyOf(ColumnElement[bool]):
    """``column`` equals one of the values in the list parameter ``name``.

    One SQL text whatever the list's length, so the statement stays prepared:
    ``= ANY($1)`` on PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite.
    """

    inherit_cache = True
    type = Boolean()
    # A condition in itself: SQLite is given ``x IN (…)``, not ``(x IN (…)) = 1``,
    # which no index can serve.
    _is_implicitly_boolean = True

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


@compiles(AnyOf, "postgresql")
def _any_of_postgresql(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    from sqlalchemy import ARRAY, String, bindparam

    param = bindparam(element.name, type_=ARRAY(String()))
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(param, **kw)})"


@compiles(AnyOf, "sqlite")
def _any_of_sqlite(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    from sqlalchemy import bindparam

    param = bindparam(element.name, type_=JSON())
    return f"{compiler.process(element.column, **kw)} IN (SELECT value FROM json_each({compiler.process(param, **kw)}))"


def any_of(column: ColumnElement[Any], name: str) -> AnyOf:
    return AnyOf(column, name)


def insert_into(table: Table, *, skip: tuple[str, ...] = ()) -> Insert:
    """``INSERT INTO table (every column but skip) VALUES (:column, ...)``."""
    return insert(table).values({c.name: bindparam(c.name) for c in table.columns if c.name not in skip})


Convert = Callable[[Any], Any]


def _sqlite_time_in(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # "%Y-%m-%d %H:%M:%S.%f", SQLAlchemy's format, so ORM and driver rows
    # agree; written by isoformat, which is several times faster than strftime.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time_out(value: str | None) -> datetime | None:
    return None if value is None else _parse_sqlite_time(value)


@functools.lru_cache(maxsize=4096)
def _parse_sqlite_time(value: str) -> datetime:
    # Cached: the same rows (a customer's products, a token's expiry) are read
    # again and again, and datetimes are immutable.
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pg_time_in(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _json_in(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _json_out(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _bool_out(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _converters(dialect: str, type_: TypeEngine[Any]) -> tuple[Convert | None, Convert | None]:
    """(bind, result) converters for a column type on a dialect; None: as is."""
    if isinstance(type_, UTCDateTime):
        return (_sqlite_time_in, _sqlite_time_out) if dialect == "sqlite" else (_pg_time_in, None)
    if isinstance(type_, JSON) and not isinstance(type_, postgresql.ARRAY):
        return _json_in, _json_out
    if isinstance(type_, Boolean) and dialect == "sqlite":
        return None, _bool_out
    return None, None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    literals: dict[str, Any]  # values written into the statement (limits, constants)
    binds: tuple[Convert | None, ...]
    # (column index, converter) for the columns the driver returns in another form.
    conversions: tuple[tuple[int, Convert], ...]
    # A SELECT: on SQLite it may run on the event loop's thread (inline_sqlite).
    reads: bool


_DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(paramstyle="qmark"),
    "postgresql": postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
}


class Query:
    """A Core statement with named ``bindparam``s, compiled once per dialect."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: str) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: str) -> _Compiled:
        compiled = self.statement.compile(dialect=_DIALECTS[dialect])
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise TypeError("IN lists are not prepared statements; use any_of(column, name) instead")
        names = tuple(compiled.positiontup or ())
        binds = tuple(_converters(dialect, compiled.binds[name].type)[0] for name in names)
        literals = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        columns = getattr(self.statement, "exported_columns", None) or ()
        results = [_converters(dialect, column.type)[1] for column in columns]
        return _Compiled(
            sql=compiled.string,
            names=names,
            literals=literals,
            binds=binds,
            conversions=tuple((index, convert) for index, convert in enumerate(results) if convert is not None),
            reads=compiled.string.lstrip()[:6].upper() == "SELECT",
        )

    def __repr__(self) -> str:
        return f"Query({self.compiled('sqlite').sql!r})"


def _arguments(compiled: _Compiled, params: dict[str, Any]) -> list[Any]:
    if compiled.literals:
        params = {**compiled.literals, **params}
    try:
        values = [params[name] for name in compiled.names]
    except KeyError as missing:
        raise TypeError(f"missing query parameter {missing}") from None
    return [value if convert is None else convert(value) for value, convert in zip(values, compiled.binds, strict=True)]


def _convert_rows(compiled: _Compiled, rows: Sequence[Sequence[Any]]) -> list[Row]:
    conversions = compiled.conversions
    if not conversions:
        return [tuple(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for index, convert in conversions:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        converted.append(tuple(values))
    return converted


# -- connections --------------------------------------------------------------


class _Driver(Protocol):
    dialect: ClassVar[str]

    async def fetch(self, sql: str, args: list[Any]) -> Sequence[Sequence[Any]]: ...
    async def begin(self, *, write: bool) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...


class _SqliteDriver:
    dialect: ClassVar[str] = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, args: list[Any]) -> Sequence[Sequence[Any]]:
        return await self.conn.execute_fetchall(sql, args)  # type: ignore[return-value]

    async def begin(self, *, write: bool) -> None:
        await self.conn.execute_fetchall("BEGIN IMMEDIATE" if write else "BEGIN")

    async def commit(self) -> None:
        await self.conn.execute_fetchall("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute_fetchall("ROLLBACK")

    async def close(self) -> None:
        await self.conn.close()


class _PostgresDriver:
    dialect: ClassVar[str] = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, args: list[Any]) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self.conn.fetch(sql, *args)
        return rows

    async def begin(self, *, write: bool) -> None:
        await self.conn.execute("BEGIN")

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")

    async def close(self) -> None:
        await self.conn.close()


_LOST_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    ConnectionError,
    OSError,
)


class Connection:
    """A unit of work's connection (a request, an event, a background step).

    It borrows a driver connection from the pool only while a statement or a
    transaction runs, so waiting on anything else (a payment provider, the
    client) never holds one; its statements take turns, so it never holds
    more than one. Statements outside :meth:`transaction` run on their own
    (autocommit).
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._turn = asyncio.Lock()
        self._transaction: tuple[asyncio.Task[Any] | None, _Driver] | None = None

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        transaction = self._transaction
        if transaction is not None:
            if transaction[0] is asyncio.current_task():
                return await self._run(transaction[1], query, params)
        elif (inline := self._database._inline_here()) is not None and (compiled := query.compiled("sqlite")).reads:
            args = _arguments(compiled, params)
            try:
                rows = inline.read(compiled.sql, args)
            except NotInline:
                pass  # busy or long: through aiosqlite's thread below
            except _DRIVER_ERRORS as exc:
                _raise_as_gateway_error(exc)
            else:
                self._database.statements += 1
                return _convert_rows(compiled, rows)
        return await self._pooled(query, params)

    async def _pooled(self, query: Query, params: dict[str, Any]) -> list[Row]:
        """``query`` on a driver connection of the pool, on its own."""
        async with self._turn:
            driver = await self._database._checkout()
            broken = False
            try:
                return await self._run(driver, query, params)
            except DatabaseUnavailable as exc:
                broken = not isinstance(exc, DatabaseBusy)
                raise
            finally:
                self._database._checkin(driver, broken=broken)

    async def first(self, query: Query, /, **params: Any) -> Row | None:
        rows = await self.all(query, **params)
        return rows[0] if rows else None

    async def scalar(self, query: Query, /, **params: Any) -> Any:
        row = await self.first(query, **params)
        return None if row is None else row[0]

    async def execute(self, query: Query, /, **params: Any) -> None:
        await self.all(query, **params)

    async def write(self, query: Query, /, **params: Any) -> list[Row]:
        """One writing statement on its own (it commits by itself), queued
        behind this process's other writers like a transaction."""
        transaction = self._transaction
        if transaction is not None and transaction[0] is asyncio.current_task():
            return await self._run(transaction[1], query, params)
        if self._database._inline_here() is not None:
            # BEGIN, the statement and COMMIT on the loop's thread cost less
            # than the statement alone through aiosqlite's.
            async with self.transaction() as tx:
                return await tx.all(query, **params)
        async with self._database.writer():
            return await self.all(query, **params)

    async def _run(self, driver: _Driver, query: Query, params: dict[str, Any]) -> list[Row]:
        compiled = query.compiled(driver.dialect)
        args = _arguments(compiled, params)
        self._database.statements += 1
        try:
            rows = await driver.fetch(compiled.sql, args)
        except _DRIVER_ERRORS as exc:
            _raise_as_gateway_error(exc)
        return _convert_rows(compiled, rows)

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Connection]:
        """Commit when the block ends, roll back if it raises. Statements of
        the task that opened it run inside it; other tasks wait their turn."""
        async with self._turn, self._database.writer(write):
            # A writer runs on the event loop's thread when it can (see
            # models.inline_sqlite), else on a driver connection of the pool.
            inline = await self._database._begin_inline() if write else None
            driver: _Driver = inline or await self._database._checkout()
            broken = False
            try:
                if inline is None:
                    with _lost_connection():
                        await driver.begin(write=write)
                self._transaction = (asyncio.current_task(), driver)
                try:
                    yield self
                except BaseException:
                    self._transaction = None
                    with contextlib.suppress(Exception):
                        await driver.rollback()
                    raise
                self._transaction = None
                with _lost_connection():
                    await driver.commit()
            except DatabaseUnavailable as exc:
                broken = not isinstance(exc, DatabaseBusy)
                raise
            finally:
                self._transaction = None
                if inline is None:
                    self._database._checkin(driver, broken=broken)
                else:
                    self._database._inline_ended()


@contextlib.contextmanager
def _lost_connection() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        raise DatabaseBusy("the SQLite database is locked by another process") from exc
    except _LOST_CONNECTION as exc:
        raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc


_DRIVER_ERRORS = (
    asyncpg.IntegrityConstraintViolationError,
    sqlite3.IntegrityError,
    sqlite3.OperationalError,
    *_LOST_CONNECTION,
)


def _gateway_error(exc: BaseException) -> BaseException:
    """A driver exception (one of ``_DRIVER_ERRORS``) in the gateway's own
    terms; an unexpected one as it is. A function, not a context manager:
    it is on every statement's path."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityViolation(str(exc))
    if isinstance(exc, sqlite3.IntegrityError):
        unique = str(exc).startswith("UNIQUE constraint failed")
        return (UniqueViolation if unique else IntegrityViolation)(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        if not is_busy(exc):
            return exc
        return DatabaseBusy("the SQLite database is locked by another process")
    return DatabaseUnavailable(str(exc) or type(exc).__name__)


def _raise_as_gateway_error(exc: BaseException) -> NoReturn:
    error = _gateway_error(exc)
    if error is exc:
        raise exc
    raise error from exc


# -- the pool -----------------------------------------------------------------


def _dialect_of(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite+aiosqlite":
        return "sqlite"
    if scheme == "postgresql+asyncpg":
        return "postgresql"
    raise UnsupportedDatabaseUrl(
        f"DATABASE_URL {scheme + '://…' if scheme else repr(url)} is not supported; use one of: "
        + ", ".join(SUPPORTED_URLS)
    )


class Database:
    """A fixed pool of at most ``pool_size`` driver connections on ``url``."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        busy_timeout_ms: int = _SQLITE_BUSY_TIMEOUT_MS,
        inline: bool = True,
    ) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.dialect = _dialect_of(url)
        self.is_sqlite = self.dialect == "sqlite"
        self.pool_size = pool_size or (4 if self.is_sqlite else 10)
        # Statements run through this database, for tests that prove a read
        # costs a constant number of them.
        self.statements = 0
        self._writer_lock = asyncio.Lock() if self.is_sqlite else None
        # Idle drivers, newest last (the warmest is reused first), and a
        # semaphore counting what may still be borrowed.
        self._idle: list[_Driver] = []
        # Every driver open now, idle or borrowed: dispose closes them all
        # (an aiosqlite connection left open keeps its thread, and the
        # process, alive).
        self._open: set[_Driver] = set()
        # Drivers being opened: their task is shielded from the caller's
        # cancellation (an aiosqlite connect cancelled half-way would leave
        # its thread running), and dispose waits for them.
        self._opening: set[asyncio.Future[_Driver]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._capacity: asyncio.Semaphore | None = None
        # SQLite file: short statements on the event loop's thread
        # (models.inline_sqlite), opened once the pool has set the file up.
        self._sqlite_path = make_url(url).database if self.is_sqlite else None
        self._inline_wanted = inline and self._sqlite_path not in (None, "", ":memory:")
        self._inline: InlineSqlite | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._engines: dict[bool, AsyncEngine] = {}
        self._closed = False

    # -- connections ------------------------------------------------------------

    def connection(self) -> Connection:
        """A connection for one unit of work (it borrows from the pool lazily,
        so it needs no closing; ``async with`` marks the unit's extent)."""
        return Connection(self)

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Connection]:
        """A connection of its own with a transaction on it."""
        async with Connection(self).transaction(write=write) as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def writer(self, write: bool = True) -> AsyncIterator[None]:
        """On SQLite, one writer at a time in this process, first come first
        served; PostgreSQL's own row locks order its writers."""
        if not write or self._writer_lock is None:
            yield
            return
        async with self._writer_lock:
            yield

    @property
    def inline_statements(self) -> int:
        """Statements run on the event loop's thread so far (of :attr:`statements`)."""
        return 0 if self._inline is None else self._inline.statements

    def _inline_here(self) -> InlineSqlite | None:
        """The loop's SQLite connections, if statements may run on this thread."""
        inline = self._inline
        if inline is None:
            if not self._inline_wanted or self._closed or not self._open:
                return None
            assert self._sqlite_path is not None
            try:
                inline = self._inline = InlineSqlite(self._sqlite_path)
            except sqlite3.Error as exc:
                # The pool opened the file, so this is unexpected: go on without.
                log.warning("SQLite statements stay on aiosqlite's threads: %s", exc)
                self._inline_wanted = False
                return None
        return inline if inline.usable() else None

    async def _begin_inline(self) -> InlineWriter | None:
        """The inline writer inside ``BEGIN IMMEDIATE``; None when it cannot
        be had without waiting (the caller holds the process's writer lock)."""
        inline = self._inline_here()
        if inline is None:
            return None
        writer = inline.writer()
        try:
            await writer.begin(write=True)
        except NotInline:
            return None  # another process writes: the pool's busy handler waits
        return writer

    def _inline_ended(self) -> None:
        inline = self._inline
        if inline is not None and inline.checkpoint_due() and self._checkpointing is None:
            self._checkpointing = asyncio.ensure_future(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the write-ahead log into the file, on aiosqlite's thread (the
        inline writer never does: it syncs the file)."""
        try:
            await self.connection()._pooled(_CHECKPOINT, {})
        except Exception as exc:  # the next one will try again
            log.warning("SQLite checkpoint failed: %s", exc)
        finally:
            self._checkpointing = None

    async def _checkout(self) -> _Driver:
        if self._closed:
            raise DatabaseUnavailable("the database is closed")
        if self._capacity is None:
            self._capacity = asyncio.Semaphore(self.pool_size)
        await self._capacity.acquire()
        if self._idle:
            return self._idle.pop()
        opening = asyncio.ensure_future(self._open_sqlite() if self.is_sqlite else self._open_postgres())
        self._opening.add(opening)
        opening.add_done_callback(self._opened)
        try:
            driver = await asyncio.shield(opening)
        except BaseException:
            self._capacity.release()
            if not opening.done():  # the caller was cancelled: keep the driver for the next one
                opening.add_done_callback(self._adopt)
            raise
        if self._closed:
            # Disposed meanwhile: _opened has closed it.
            self._capacity.release()
            raise DatabaseUnavailable("the database is closed")
        return driver

    def _opened(self, opening: asyncio.Future[_Driver]) -> None:
        """A driver finished opening: count it as open, or close it if nobody
        can use it any more (the database was disposed meanwhile, or the
        caller was cancelled)."""
        self._opening.discard(opening)
        if opening.cancelled() or opening.exception() is not None:
            return
        driver = opening.result()
        self._open.add(driver)
        if self._closed:
            self._discard(driver)

    def _adopt(self, opening: asyncio.Future[_Driver]) -> None:
        if not (self._closed or opening.cancelled() or opening.exception() is not None):
            self._idle.append(opening.result())

    def _checkin(self, driver: _Driver, *, broken: bool = False) -> None:
        assert self._capacity is not None
        if broken or self._closed:
            self._discard(driver)
        else:
            self._idle.append(driver)
        self._capacity.release()

    def _discard(self, driver: _Driver) -> None:
        """Close ``driver`` in the background (dispose awaits what is left)."""
        self._open.discard(driver)
        task = asyncio.ensure_future(driver.close())
        self._closing.add(task)
        task.add_done_callback(self._closed_driver)

    def _closed_driver(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed close is of no interest

    async def _open_sqlite(self) -> _Driver:
        path = make_url(self.url).database or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseUnavailable(f"cannot open the SQLite database: {exc}") from exc
        try:
            # WAL is a property of the file, set once; switching needs a lock a
            # concurrent writer may hold, and whoever gets it sets it for all.
            mode = await conn.execute_fetchall("PRAGMA journal_mode")
            if str(next(iter(mode))[0]).lower() != "wal":
                with contextlib.suppress(sqlite3.OperationalError):
                    await conn.execute_fetchall("PRAGMA journal_mode=WAL")
            await conn.executescript(
                f"PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout={self.busy_timeout_ms};"
            )
        except BaseException as exc:
            # Cancelled or failed half-open: close it, or its thread lives on.
            await asyncio.shield(conn.close())
            if isinstance(exc, sqlite3.Error | OSError):
                raise DatabaseUnavailable(f"cannot open the SQLite database: {exc}") from exc
            raise
        return _SqliteDriver(conn)

    async def _open_postgres(self) -> _Driver:
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with _lost_connection():
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
            except (TimeoutError, asyncpg.PostgresError) as exc:
                raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
        return _PostgresDriver(conn)

    # -- the ORM, for cold paths ------------------------------------------------

    def engine(self, *, write: bool = False) -> AsyncEngine:
        """SQLAlchemy's engine for migrations and administration (not requests);
        on SQLite the writing one begins its transactions IMMEDIATE."""
        engine = self._engines.get(write)
        if engine is None:
            engine = self._engines[write] = _orm_engine(self.url, self.is_sqlite, write=write)
        return engine

    @contextlib.asynccontextmanager
    async def orm(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """An SQLModel session; with ``write`` a transaction that commits at the end."""
        engine = self.engine(write=write and self.is_sqlite)
        sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        if not write:
            async with sessions() as session:
                yield session
            return
        async with self.writer(), sessions() as session, session.begin():
            yield session

    # -- lifecycle --------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            async with self.connection() as connection:
                await connection._pooled(_PING, {})
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every driver: the idle ones, those still borrowed (their
        statements fail) and those being closed."""
        self._closed = True
        self._idle = []
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing], timeout=10)
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._opening:
            # Each closes itself once open (_opened).
            await asyncio.wait(list(self._opening), timeout=10)
            await asyncio.sleep(0)  # let their callbacks run
        drivers, self._open = list(self._open), set()
        for driver in drivers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(driver.close(), 5)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            await engine.dispose()


_PING = Query(text("SELECT 1"))
_CHECKPOINT = Query(text("PRAGMA wal_checkpoint(PASSIVE)"))


def _orm_engine(url: str, is_sqlite: bool, *, write: bool) -> AsyncEngine:
    if not is_sqlite:
        return create_async_engine(url, pool_size=2, max_overflow=4, pool_pre_ping=True)
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, decides when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writing transaction takes SQLite's write lock up front.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
