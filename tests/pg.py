"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a free
loopback port with a private socket folder, a password-protected superuser, stopped at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (via
``runuser``); as anyone else it runs as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "fnsearch"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or the server did not start."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServerUnavailable(
        "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin or on PATH; "
        "`make test` installs them with apt-get"
    )


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parents[1].name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One running cluster; :meth:`new_database` hands each test a database of its own."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.password = "pw-" + secrets.token_hex(8)  # distinctive, so tests can grep for it
        self.root = Path(tempfile.mkdtemp(prefix="fnsearch-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._as_root = os.geteuid() == 0
        self._count = 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> PgServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        init = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _ in range(3):  # a free port can be taken between finding it and binding it
            self.port = _free_port()
            started = self._run(*self._start_args())
            if started.returncode == 0:
                return self
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise ServerUnavailable(f"PostgreSQL did not start: {started.stderr.strip()}\n{log}")

    def _start_args(self) -> list[str]:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # A test server: durability across a crash is not the point, speed is (a clean stop
            # still writes everything, so a restart loses nothing).
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.root / "server.log")
        return ["pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"]

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{USER}:{pw}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        self._count += 1
        name = f"t{self._count}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, password=self.password, dbname="postgres"
        ) as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self, down_seconds: float) -> subprocess.Popen[str]:
        """Stop the server now (as an administrator would: clients are cut off) and start it again
        ``down_seconds`` later, in the background."""
        stop = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if stop.returncode != 0:
            raise ServerUnavailable(f"pg_ctl stop failed: {stop.stderr.strip()}")
        args = self._start_args()
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.Popen(
            ["sh", "-c", f'sleep {down_seconds} && exec "$@"', "sh", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
