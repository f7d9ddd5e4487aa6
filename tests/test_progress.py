"""What the command line shows: the bar on a terminal, plain lines elsewhere, the final table, help.

The displays are unit-tested with a fake clock; the CLI is run for real, through a pipe (plain
lines) and through a pseudo-terminal (the bar), as a user would see it.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from fnsearch.api import Progress
from fnsearch.cli import main
from fnsearch.progress import Bar, Lines, duration, make_display
from fnsearch.words import baseline_words, policy_words

from .conftest import german_spec, run_cli

ROUNDS = ["--trials", "24", "--set", "search.population=6"]  # four rounds of six trials


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_duration_reads_like_a_clock():
    """Check that durations print as m:ss, or h:mm:ss past an hour."""
    assert [duration(s) for s in (0, 7.4, 65, 3600 + 184)] == ["0:00", "0:07", "1:05", "1:03:04"]


def test_lines_print_the_first_round_then_periodically_and_the_last():
    """Check that plain lines show the first round, at most one per interval, and the last."""
    clock, out = Clock(), io.StringIO()
    lines = Lines(out, every=10.0, clock=clock)
    for k, t in enumerate([2, 4, 13, 14, 30], start=1):
        clock.now = 100.0 + t
        lines.update(Progress(8 * k, 40, 0.5 - 0.01 * k, 2.0 + k, float(t)))
    lines.close()
    printed = out.getvalue().splitlines()
    assert printed == [
        "fnsearch: trials 8/40 (20%), best validation cost 0.4900 at w = 3, 0:02 elapsed, ETA 0:08",
        "fnsearch: trials 24/40 (60%), best validation cost 0.4700 at w = 5, 0:13 elapsed, ETA 0:11",
        "fnsearch: trials 40/40 (100%), best validation cost 0.4500 at w = 7, 0:30 elapsed",
    ]


def test_lines_show_the_last_state_when_a_search_stops_between_lines():
    """Check that close() prints a suppressed update (an early stop or an interrupt)."""
    clock, out = Clock(), io.StringIO()
    lines = Lines(out, every=10.0, clock=clock)
    lines.update(Progress(8, 40, None, None, 1.0))
    clock.now += 1
    lines.update(Progress(16, 40, 0.5, 2.0, 2.0))
    assert len(out.getvalue().splitlines()) == 1
    assert "no trial complete yet" in out.getvalue()
    lines.close()
    assert out.getvalue().splitlines()[-1].startswith("fnsearch: trials 16/40 (40%)")
    lines.close()
    assert len(out.getvalue().splitlines()) == 2


def test_eta_uses_this_runs_pace_on_a_resumed_study():
    """Check that trials finished by an earlier run do not speed up the ETA after round two."""
    clock, out = Clock(), io.StringIO()
    lines = Lines(out, every=0.0, clock=clock)
    lines.update(Progress(40, 60, 0.5, 2.0, 2.0))  # 30 of these 40 were done before this run
    lines.update(Progress(50, 60, 0.5, 2.0, 4.0))  # this run: 10 trials in 2 s
    assert out.getvalue().splitlines()[-1].endswith("ETA 0:02")


def test_bar_redraws_in_place_and_prints_messages_above():
    """Check the bar's line (trials, bar, best, elapsed, ETA), its width, and messages above it."""
    clock, out = Clock(), io.StringIO()
    bar = Bar(out, tick=0, clock=clock, columns=lambda: 100)
    assert "starting the search" in bar.line()
    clock.now += 3
    bar.update(Progress(16, 64, 0.4713, 5.54, 3.0))
    line = bar.line()
    assert line.startswith("16/64 trials ") and " 25%  best 0.4713 at w=5.54" in line
    assert "elapsed 0:03  ETA 0:09" in line and len(line) <= 99
    assert re.search("█+░+", line)
    clock.now += 4  # a long round: the ETA counts down between updates
    assert "elapsed 0:07  ETA 0:05" in bar.line()
    bar.message("wrote summary.json")
    bar.update(Progress(64, 64, 0.47, 5.5, 12.0))
    assert "finishing up" in bar.line()
    bar.close()
    text = out.getvalue()
    assert text.count("\n") == 2 and text.endswith("done in 0:07\x1b[K\n")
    before, after = text.split("fnsearch: wrote summary.json\n")
    assert before.endswith("\r\x1b[K") and after.startswith("\r16/64 trials")
    bar.close()
    assert out.getvalue() == text


def test_bar_fits_a_narrow_terminal_and_ascii_streams():
    """Check that the bar never wraps a narrow terminal and falls back to ASCII."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    bar = Bar(out, tick=0, clock=Clock(), columns=lambda: 40)
    bar.update(Progress(3, 64, 0.5, 1.0, 1.0))
    assert len(bar.line()) <= 39 and bar.line().endswith("~") and bar.line().isascii()
    bar.close()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_display_draws_a_bar_only_on_a_terminal(monkeypatch):
    """Check the choice of display: a bar on a terminal, lines on a pipe or a dumb terminal."""
    monkeypatch.setenv("TERM", "xterm")
    bar = make_display(FakeTerminal())
    assert isinstance(bar, Bar)
    bar.close()
    assert isinstance(make_display(io.StringIO()), Lines)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_display(FakeTerminal()), Lines)


def _check_table(stdout: str, summary: dict, out) -> None:
    best, test = summary["best"], summary["test"]
    lines = stdout.splitlines()
    assert lines[0].startswith(
        f"chosen: pos_weight {best['pos_weight']:.4g} ({policy_words(best['policy'])}"
    )
    assert lines[1].startswith(f"policy ({summary['data']['rows']['test']} test rows)")
    rows = [("chosen", test), *summary["baselines"].items()]
    for line, (name, s) in zip(lines[2:], rows, strict=False):
        lo, hi = s["ci95"]
        assert line.startswith(baseline_words(name))
        assert f"{s['cost_per_example']:.4f}" in line and f"{lo:.4f} to {hi:.4f}" in line
    assert lines[2 + len(rows) :] == [f"run folder: {out}", f"report: {out / 'report.html'}"]


@pytest.mark.slow
def test_cli_on_a_pipe_prints_plain_lines_and_the_final_table(tmp_path):
    """Check the real CLI with stderr on a pipe: plain progress lines (first round, last round,
    ETA), no duplicated log lines, and the final table matching summary.json."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fnsearch", "search", german_spec(tmp_path), "--out", out, *ROUNDS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert err[0].startswith("fnsearch: study 'gc_test': 24 trials, population 6")
    progress = [e for e in err if e.startswith("fnsearch: trials ")]
    assert progress[0].startswith("fnsearch: trials 6/24 (25%), best validation cost ")
    assert re.search(r", \d+:\d\d elapsed, ETA \d+:\d\d$", progress[0])
    assert progress[-1].startswith("fnsearch: trials 24/24 (100%)")
    assert 2 <= len(progress) <= 4 and all("elapsed" in e for e in progress)
    assert err[-1] == f"fnsearch: wrote {out / 'summary.json'}"
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    _check_table(proc.stdout, summary, out)
    assert "trials 6/24, best validation cost" in (out / "run.log").read_text()  # every round


def _run_on_a_terminal(
    args: list[str], columns: int = 100, timeout: float = 300
) -> tuple[int, str]:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fnsearch", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    os.close(master)
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_cli_on_a_terminal_draws_a_bar(tmp_path):
    """Check the real CLI on a pseudo-terminal: a bar redrawn in place with trials, best cost and
    ETA, log lines above it, its final state left on screen, then the table."""
    out = tmp_path / "run"
    code, screen = _run_on_a_terminal(
        ["search", str(german_spec(tmp_path)), "--out", str(out), *ROUNDS]
    )
    assert code == 0, screen
    # the bar is drawn in block characters on a UTF-8 terminal, in ASCII otherwise
    frames = [f for f in screen.split("\r") if "trials " in f and ("█" in f or "#" in f)]
    assert any(f.startswith("6/24 trials ") and "ETA" in f for f in frames), frames
    assert all(len(f.replace("\x1b[K", "").rstrip("\n")) <= 99 for f in frames)
    final = frames[-1]
    assert final.startswith("24/24 trials ") and " 100%  best " in final and "done in" in final
    assert "fnsearch: study 'gc_test'" in screen and "fnsearch: trials 6/24 (" not in screen
    summary = json.loads((out / "summary.json").read_text())
    table = screen[screen.index("done in") :].split("\n", 1)[1].replace("\r", "")
    _check_table(table, summary, out)


def test_quiet_prints_nothing_on_stderr(tmp_path, capsys):
    """Check that --quiet silences progress and log lines but keeps the final table."""
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(capsys, "search", german_spec(tmp_path), "--out", out, "-q")
    assert code == 0 and stderr == ""
    assert stdout.startswith("chosen: pos_weight ") and f"report: {out / 'report.html'}" in stdout


@pytest.mark.parametrize("verb", [None, "search", "worker", "report", "predict", "datasets"])
def test_every_help_is_complete_with_an_example(verb, capsys):
    """Check that `fnsearch --help` and each verb's help describe it and show an example."""
    with pytest.raises(SystemExit) as stop:
        main([verb, "--help"] if verb else ["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text
    assert re.search(rf"^  fnsearch {verb or 'search'}( |$)", text, re.MULTILINE)
    if verb in (None, "search", "worker", "report"):
        assert "130 interrupted" in text and "3 the search ran but" in text.replace("\n", " ")
    if verb == "search":
        for flag in (
            "--out DIR",
            "--trials N",
            "--storage URL",
            "--set SECTION.KEY=VALUE",
            "--quiet",
        ):
            assert flag in text
