"""What the command line shows while a search runs: a bar redrawn in place on a terminal, plain
periodic lines anywhere else (a CI log, a file). Both take :class:`fnsearch.api.Progress` updates
(one per round of trials) and the log's messages, which they print above the bar.

Only the CLI uses this module; :func:`fnsearch.tune` itself never prints.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

__all__ = ["Bar", "Display", "Lines", "duration", "make_display"]


class _Progress(Protocol):  # fnsearch.api.Progress, without importing torch for a type
    finished: int
    total: int
    best_value: float | None
    best_weight: float | None
    seconds: float


def duration(seconds: float) -> str:
    """``0:07``, ``1:05``, ``2:03:04``: a clock reading, whole seconds."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Eta:
    """Remaining time from the pace of this run's rounds.

    The first update can hold trials finished by an earlier run (a resumed study); from the
    second on, the pace is measured between updates of this run only.
    """

    def __init__(self) -> None:
        self.first: _Progress | None = None

    def __call__(self, p: _Progress) -> float | None:
        if self.first is None:
            self.first = p
        left = p.total - p.finished
        if left <= 0:
            return 0.0
        base = self.first if p is not self.first else None
        done = p.finished - (base.finished if base else 0)
        spent = p.seconds - (base.seconds if base else 0.0)
        if done <= 0 or spent <= 0:
            return None
        return spent / done * left


def _best(p: _Progress) -> str:
    if p.best_value is None:
        return "no trial complete yet"
    return f"best validation cost {p.best_value:.4f} at w = {p.best_weight:.3g}"


class Display(Protocol):
    def update(self, p: _Progress) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class Lines:
    """Plain lines: the first round, then at most one every ``every`` seconds, and the last."""

    def __init__(
        self,
        stream: TextIO,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.every, self.clock = stream, every, clock
        self.eta = _Eta()
        self.last: float | None = None
        self.pending: tuple[_Progress, float | None] | None = None

    def update(self, p: _Progress) -> None:
        eta = self.eta(p)
        now = self.clock()
        if self.last is not None and p.finished < p.total and now - self.last < self.every:
            self.pending = (p, eta)  # shown at close() if nothing newer is printed
            return
        self.last, self.pending = now, None
        self._print(p, eta)

    def _print(self, p: _Progress, eta: float | None) -> None:
        pct = 100.0 * p.finished / max(1, p.total)
        left = "" if p.finished >= p.total or eta is None else f", ETA {duration(eta)}"
        self.message(
            f"trials {p.finished}/{p.total} ({pct:.0f}%), {_best(p)}, "
            f"{duration(p.seconds)} elapsed{left}"
        )

    def message(self, text: str) -> None:
        # A closed or broken stream must never stop the search.
        with contextlib.suppress(OSError, ValueError):
            print(f"fnsearch: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        # The search stopped between two printed lines (early stop, interrupt): show where.
        if self.pending is not None:
            self._print(*self.pending)
            self.pending = None


_SPIN = "|/-\\"


class Bar:
    """One line redrawn in place: trials done/total, a bar, best cost so far, elapsed and ETA.

    A background tick redraws it every ``tick`` seconds so the clock moves during a long round;
    messages are printed above it. ``close()`` leaves the last state on screen, then a newline.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tick: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self.stream, self.clock = stream, clock
        self.columns = columns or (lambda: _columns(stream))
        self.start = clock()
        self.eta = _Eta()
        self.state: tuple[_Progress, float | None, float] | None = None  # progress, eta, at
        self.lock = threading.Lock()
        self.drawn = self.closed = False
        self.spin = 0
        self.full, self.empty = _bar_chars(stream)
        self.stop = threading.Event()
        self.ticker = None
        if tick > 0:
            self.ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True)
            self.ticker.start()

    def _tick(self, every: float) -> None:
        while not self.stop.wait(every):
            with self.lock:
                self.spin += 1
                self._draw()

    def line(self) -> str:
        """The bar as it would be drawn now, fitted to the terminal (no carriage return)."""
        now = self.clock()
        spin = _SPIN[self.spin % len(_SPIN)]
        width = self.columns() - 1  # the last column would wrap on some terminals
        if self.state is None:
            if self.closed:
                return _fit(f"fnsearch: stopped after {duration(now - self.start)}", width)
            return _fit(
                f"fnsearch: starting the search  elapsed {duration(now - self.start)} {spin}", width
            )
        p, eta, at = self.state
        since = now - at  # the clock keeps moving between rounds
        elapsed = f"elapsed {duration(now - self.start)}"  # one clock from start to finish
        frac = min(1.0, p.finished / max(1, p.total))
        if self.closed:
            verb = "done in" if p.finished >= p.total else "stopped after"
            tail = f"{verb} {duration(now - self.start)}"
        elif p.finished >= p.total:
            tail = f"{elapsed}  finishing up {spin}"
        else:
            left = "ETA ?" if eta is None else f"ETA {duration(max(0.0, eta - since))}"
            tail = f"{elapsed}  {left} {spin}"
        best = (
            "best n/a"
            if p.best_value is None
            else f"best {p.best_value:.4f} at w={p.best_weight:.3g}"
        )
        head = f"{p.finished}/{p.total} trials "
        rest = f" {100 * frac:3.0f}%  {best}  {tail}"
        cells = max(8, min(30, width - len(head) - len(rest)))
        filled = round(frac * cells)
        return _fit(head + self.full * filled + self.empty * (cells - filled) + rest, width)

    def _draw(self) -> None:
        self._write("\r" + self.line() + "\x1b[K")
        self.drawn = True

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()

    def update(self, p: _Progress) -> None:
        with self.lock:
            self.state = (p, self.eta(p), self.clock())
            self._draw()

    def message(self, text: str) -> None:
        with self.lock:
            if self.drawn:
                self._write("\r\x1b[K")
            self._write(f"fnsearch: {text}\n")
            if self.drawn:
                self._draw()

    def close(self) -> None:
        """Stop the clock and leave the final state on its own line (again: nothing)."""
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            if self.drawn and not self.closed:
                self.closed = True
                self._draw()
                self._write("\n")
            self.closed = True


def _fit(text: str, width: int) -> str:
    # A line longer than the terminal wraps, and a wrapped line cannot be redrawn in place.
    return text if len(text) <= width else text[: max(1, width - 1)] + "~"


def _columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def _bar_chars(stream: Any) -> tuple[str, str]:
    try:
        "█░".encode(getattr(stream, "encoding", None) or "utf-8")  # no encoding: a str buffer
    except (LookupError, UnicodeEncodeError):
        return "#", "."
    return "█", "░"


def make_display(stream: TextIO) -> Display:
    """A bar when ``stream`` is an interactive terminal, plain periodic lines otherwise."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and os.environ.get("TERM") != "dumb":
        return Bar(stream)
    return Lines(stream)
