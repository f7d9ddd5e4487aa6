"""Database storages (PostgreSQL, SQLite): retries, cross-process locks, the SQLite guard.

Several workers share a study through a PostgreSQL server. What makes that safe here:

- Every storage call that fails on a dropped connection or a busy database is retried with
  backoff, so a server restart or a network blip does not end hours of training.
- The steps that must happen once are serialised across workers with PostgreSQL advisory locks:
  creating Optuna's tables (two processes doing it at once on an empty database fail with a
  duplicate-key error), creating the study with its fingerprint and first trials, and each round's
  "how many trials are left to ask" (so the study ends with exactly the total, not a round more).
  The server drops an advisory lock when its connection goes, so a killed worker never leaves one.
- SQLite takes one process at a time: a second one is refused (an flock beside the file), since
  concurrent writers lock each other out and can corrupt the file on a network disk.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from .errors import StorageError
from .spec import mask_url
from .storage import process_lock

__all__ = ["Database", "RetryingRDBStorage", "connect", "open_rdb", "sqlite_path"]

log = logging.getLogger("fnsearch")

# Waits between attempts of a storage call that failed on the connection: about a minute in all,
# enough for a server restart or a fail-over, short enough that a real outage is reported.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0)


def _transient(error: BaseException) -> bool:
    """A lost connection, a busy database or a pool timeout: worth another try."""
    from sqlalchemy import exc

    if isinstance(error, StorageError):  # retries already given up (a nested call)
        return False
    seen: BaseException | None = error
    for _ in range(4):  # Optuna wraps SQLAlchemy's error, which wraps the driver's
        if seen is None:
            return False
        if isinstance(
            seen,
            exc.OperationalError | exc.InterfaceError | exc.DisconnectionError | exc.TimeoutError,
        ):
            return True
        if isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _first_line(error: BaseException) -> str:
    cause = error.__cause__ or error
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _with_retries(url: str, call: Callable[[], Any]) -> Any:
    """``call()``, tried again with backoff while it fails on the connection or a busy database."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            return call()
        except Exception as e:
            if not _transient(e):
                raise
            if delay is None:
                raise StorageError(
                    f"lost the storage {mask_url(url)}: {_first_line(e)}; finished trials are "
                    "stored - rerun the same command to resume once the server is back"
                ) from None
            log.warning(
                "storage %s: %s; retry %d in %.1f s",
                mask_url(url),
                _first_line(e),
                attempt + 1,
                delay,
            )
            time.sleep(delay * random.uniform(0.75, 1.25))  # jitter: workers do not retry in step
    raise AssertionError("unreachable")


class RetryingRDBStorage(RDBStorage):
    """Optuna's RDB storage whose calls survive a dropped connection or a busy database."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._fnsearch_url = url  # before Optuna's constructor, which already calls methods
        super().__init__(url, **kwargs)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        attempts = 0

        def once() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retry after a lost acknowledgement finds its own write done: that is success.
                # Without a retry the trial was finished by someone else, which callers rely on.
                if attempts > 1:
                    now = RDBStorage.get_trial(self, trial_id)
                    if now.state == state and (values is None or now.values == list(values)):
                        return True
                raise

        return _with_retries(self._fnsearch_url, once)


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return _with_retries(self._fnsearch_url, lambda: method(self, *args, **kwargs))

    return call


# Every public storage call, plus the private ones Optuna's cache in front of it calls directly.
_PRIVATE = ["_create_new_trial", "_set_trial_param", "_get_best_trial_id", "_get_trials"]
for _name in [n for n in vars(BaseStorage) if not n.startswith("_")] + _PRIVATE:
    if _name != "set_trial_state_values" and callable(getattr(RDBStorage, _name, None)):
        setattr(RetryingRDBStorage, _name, _retried(_name))


def sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///`` URL (None for other URLs and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    return None if db in (None, "", ":memory:") else Path(db)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # SQLite's own busy wait, before our retries
    return {"pool_pre_ping": True}  # a connection the server dropped is replaced, not used


def _normalised(url: str) -> str:
    # libpq's short scheme, which users copy from their hosting panel; SQLAlchemy no longer takes it
    return (
        "postgresql://" + url.removeprefix("postgres://") if url.startswith("postgres://") else url
    )


def open_rdb(url: str) -> RetryingRDBStorage:
    """Optuna's RDB storage for ``url`` (tables created if needed), with retries; errors masked."""
    url = _normalised(url)
    try:
        return RetryingRDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as e:  # SQLAlchemy and drivers raise many types; the URL may hold a password
        raise _cannot_open(url, e) from None


# --- locks ------------------------------------------------------------------------------------


def _cannot_open(url: str, error: BaseException) -> StorageError:
    return StorageError(
        f"cannot open storage {mask_url(url)}: {_first_line(error).replace(url, mask_url(url))}; "
        "check the URL and that the server is running"
    )


class _AdvisoryLocks:
    """Named PostgreSQL advisory locks on one connection of this process' own."""

    def __init__(self, url: str) -> None:
        import sqlalchemy

        self._url = url
        try:
            self._engine = sqlalchemy.create_engine(
                url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT"
            )
            self._conn: Any = None
            self._connection()  # a wrong URL or password is reported now, not retried
        except Exception as e:
            raise _cannot_open(url, e) from None

    def _connection(self) -> Any:
        import sqlalchemy

        if self._conn is None:
            self._conn = self._engine.connect()
            # The server notices a vanished client machine within half a minute and drops its
            # locks, instead of after the two hours of the operating system's default.
            for setting in ("tcp_keepalives_idle = 10", "tcp_keepalives_interval = 5"):
                self._conn.execute(sqlalchemy.text(f"SET {setting}"))
        return self._conn

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        import sqlalchemy

        key = int.from_bytes(hashlib.sha256(f"fnsearch:{name}".encode()).digest()[:8], "big")
        key -= (1 << 64) if key >= (1 << 63) else 0  # PostgreSQL's lock keys are signed bigints

        def acquire() -> None:
            try:
                self._connection().execute(
                    sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key}
                )
            except Exception:
                self.close()  # a broken connection is replaced on the retry
                raise

        _with_retries(self._url, acquire)
        try:
            yield
        finally:
            try:
                self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except Exception:  # the connection is gone, and the server dropped the lock with it
                self.close()

    def initialised(self) -> bool:
        """Whether Optuna finished setting this database up (tables made and versions stamped)."""
        import sqlalchemy

        conn = self._connection()
        if conn.execute(sqlalchemy.text("SELECT to_regclass('alembic_version')")).scalar() is None:
            return False
        return conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar() > 0

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _file_lock(db: Path, url: str) -> contextlib.AbstractContextManager[None]:
    if not db.parent.is_dir():
        raise StorageError(
            f"cannot open storage {mask_url(url)}: folder {str(db.parent)!r} does not exist; "
            "create it or fix the path"
        )
    return process_lock(
        f"{db}.fnsearch.lock",
        f"storage {mask_url(url)} is in use by another fnsearch process; SQLite takes one "
        "worker at a time - run several workers on PostgreSQL (README: Running on several "
        "machines), or wait for the other to finish",
    )


class Database:
    """An open database storage and what this process may do on it.

    ``exclusive``: no other process runs trials on it now (SQLite, under the guard), so any RUNNING
    trial was left by a dead run. Otherwise workers coordinate through :meth:`lock`.
    """

    def __init__(self, url: str, exclusive: bool, locks: _AdvisoryLocks | None) -> None:
        self.url = url
        self.exclusive = exclusive
        self._locks = locks
        self.storage: RetryingRDBStorage | None = None

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Hold the named cross-process lock (a no-op without a server that has them)."""
        if self._locks is None:
            return contextlib.nullcontext()
        return self._locks.hold(name)


@contextlib.contextmanager
def connect(url: str) -> Iterator[Database]:
    """Open a database storage to run trials on: guarded for SQLite, with locks on PostgreSQL."""
    url = _normalised(url)
    with contextlib.ExitStack() as stack:
        db_file = sqlite_path(url)
        if db_file is not None:
            stack.enter_context(_file_lock(db_file, url))
        locks = None
        if url.split(":", 1)[0].split("+", 1)[0] == "postgresql":
            locks = _AdvisoryLocks(url)
            stack.callback(locks.close)
        database = Database(url, exclusive=url.startswith("sqlite"), locks=locks)
        # Optuna sets a database up on its first use; joiners of a set-up one need not queue.
        try:
            ready = locks is not None and locks.initialised()
        except Exception:  # the tables lock is then taken: slower, never wrong
            ready = False
        with contextlib.nullcontext() if ready else database.lock("tables"):
            database.storage = open_rdb(url)
        stack.callback(database.storage.engine.dispose)
        yield database
