"""Optuna storage: the run folder's journal file (default), an RDB URL, or memory.

The journal file is written behind, one round at a time: inside :func:`write_behind` the trials a
round asks and tells are kept in memory (readable by this process as if written) and reach the file
in one append and one fsync when the round ends. Optuna's file backend otherwise fsyncs and re-reads
the file for each of the ~5 writes a trial makes, which at a few hundred trials per second is a
third of the search. Only this process writes its run folder's file, so nothing else can
interleave; a crash mid-round loses that round's unfinished trials, which were lost work anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalStorage

from .errors import StorageError
from .spec import mask_url

__all__ = [
    "STUDY_FILE",
    "WriteBehindFileBackend",
    "check_url",
    "drop_torn_tail",
    "make_storage",
    "run_folder_lock",
    "write_behind",
]

log = logging.getLogger("fnsearch")

STUDY_FILE = "study.log"  # the default storage: a journal file in the run folder
LOCK_FILE = ".fnsearch.lock"


@contextlib.contextmanager
def process_lock(path: str | os.PathLike[str], busy: str) -> Iterator[None]:
    """Hold ``path`` (flock) for this process, or raise StorageError(``busy``) if another holds it.
    The kernel drops the lock when the process dies, even by SIGKILL, so a crash never leaves a
    stale lock behind."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(busy) from None
    try:
        yield
    finally:
        os.close(fd)


def run_folder_lock(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the run folder for this process: its journal is written behind, so two searches on one
    folder would corrupt the study."""
    return process_lock(
        run_dir / LOCK_FILE,
        f"run folder {run_dir} is in use by another fnsearch search; wait for it to finish, "
        "or use another --out (several workers share a study through --storage URL)",
    )


def drop_torn_tail(run_dir: Path) -> None:
    """Cut a partly written last entry off the run folder's journal (a write cut short by a crash
    or a full disk). Optuna skips such a line when reading, but a later append would glue onto it
    and make the whole file unreadable. Call it only while holding :func:`run_folder_lock`."""
    path = run_dir / STUDY_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else 0
        if cut < 0 and size > len(tail):
            return  # a last entry over 1 MiB long: not a journal fnsearch wrote; leave it be
        f.truncate(keep)
    log.warning("%s ended in a partly written entry (an interrupted write); dropped it", path)


class WriteBehindFileBackend(BaseJournalBackend):
    """A :class:`JournalFileBackend` whose appends can be held back and written in one go."""

    def __init__(self, path: str) -> None:
        self._file = JournalFileBackend(path)
        self._path = path
        self._held: list[str] | None = None  # encoded logs not yet in the file; None: write through
        self._held_logs: list[dict[str, Any]] = []
        self._in_file = 0  # logs in the file when holding started

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        if self._held is None or log_number_from < self._in_file:
            try:
                yield from self._file.read_logs(log_number_from)
            except ValueError:  # json.JSONDecodeError, or optuna's "Invalid log format."
                raise StorageError(
                    f"{self._path} is damaged: a line in it is not an Optuna journal entry; move "
                    "it away to start the study afresh, or restore it from a copy"
                ) from None
        if self._held is not None:
            yield from self._held_logs[max(0, log_number_from - self._in_file) :]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if self._held is None:
            self._file.append_logs(logs)
            return
        for entry in logs:
            # Encoded now, as the file backend would: what this process reads back is exactly what
            # the file will hold, and an unencodable value fails here, not at the flush.
            line = json.dumps(entry, separators=(",", ":"))
            self._held.append(line)
            self._held_logs.append(json.loads(line))

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        with open(self._path, "rb") as f:
            self._in_file = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        self._held, self._held_logs = [], []
        try:
            yield
        finally:
            held, self._held, self._held_logs = self._held, None, []
            if held:
                # One append of whole lines under the file lock, as JournalFileBackend writes.
                self._file.append_logs([json.loads(line) for line in held])


def write_behind(study: optuna.Study) -> contextlib.AbstractContextManager[None]:
    """Hold the study's journal writes until the block ends (a no-op for other storages)."""
    storage = study._storage  # Optuna keeps the storage object it was given
    backend = getattr(storage, "_backend", None) if isinstance(storage, JournalStorage) else None
    if isinstance(backend, WriteBehindFileBackend):
        return backend.holding()
    return contextlib.nullcontext()


def make_storage(url: str | None, run_dir: Path | None) -> optuna.storages.BaseStorage:
    """Optuna storage from a URL, a journal file in the run folder, or memory (no run folder).

    A URL opened here is for reading (``fnsearch report``); workers open theirs with
    :func:`fnsearch.rdb.connect`, which adds the cross-process guards.
    """
    if url is None:
        if run_dir is None:
            return optuna.storages.InMemoryStorage()
        return JournalStorage(WriteBehindFileBackend(str(run_dir / STUDY_FILE)))
    check_url(url)
    from .rdb import open_rdb

    return open_rdb(url)


def check_url(url: str) -> None:
    """Refuse a storage that is not a URL, with the forms that work."""
    if "://" not in url:
        raise StorageError(
            f"storage {mask_url(url)!r} is not a URL; use e.g. sqlite:///study.db or "
            "postgresql://user:password@host/db"
        )
