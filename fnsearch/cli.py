"""The ``fnsearch`` command line: a thin shell over :func:`fnsearch.tune` and friends.

Exit codes: 0 ok; 2 a user mistake (one line on stderr, no traceback); 3 the search ran but no trial
completed; 130 interrupted (rerun the same command to resume); 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FnsearchError, SpecError

if TYPE_CHECKING:
    from .progress import Display

__all__ = ["main"]

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_NO_TRIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_EXIT_CODES = (
    "exit codes: 0 ok; 2 a user mistake (one line on stderr, nothing written); 3 the search ran but\n"
    "no trial completed (the report says why); 130 interrupted (rerun the same command to resume);\n"
    "1 a bug"
)
_EPILOG = f"""examples:
  fnsearch search studies/german_credit.toml
  fnsearch search studies/german_credit.toml --trials 128 --set 'model.hidden=[64]' --out runs/gc64
  fnsearch predict runs/german_credit new_applicants.csv --out scores.csv
  fnsearch report runs/german_credit
  fnsearch datasets

Run `fnsearch VERB --help` for each verb's options. While a search runs, a progress bar shows on a
terminal (plain lines every 10 s in a log or CI); --quiet silences it. Settings come from the spec,
then FNSEARCH_STORAGE, then the command line.

{_EXIT_CODES}"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, like every user mistake
        self.exit(EXIT_USER, f"fnsearch: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fnsearch",
        description="Find the false-negative weight (pos_weight of "
        "BCE-with-logits) that minimises your own FN/FP costs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fnsearch {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def spec_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("spec", help="study spec (TOML), e.g. studies/german_credit.toml")
        sp.add_argument(
            "--trials",
            type=int,
            metavar="N",
            help="total finished trials the study should hold (not 'N more')",
        )
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="override one spec value, parsed as TOML (repeatable), "
            "e.g. --set 'model.hidden=[64]' --set data.label=risk",
        )
        sp.add_argument(
            "--quiet",
            "-q",
            action="store_true",
            help="no progress bar or lines on stderr (a search's run.log still has them)",
        )

    s = sub.add_parser(
        "search",
        help="run or resume a study and write the run folder",
        description="Run or resume a study and write its run folder (summary.json, "
        "report.html, trials.csv, model.pt, ...).",
        epilog="""examples:
  fnsearch search studies/german_credit.toml
      runs 64 trials, writes runs/german_credit/ and prints the chosen weight and baselines
  fnsearch search studies/german_credit.toml --trials 128 --out runs/gc
      resumes runs/gc (or starts it) until the study holds 128 finished trials
  fnsearch search my.toml --set model.epochs=50 --set 'model.hidden=[64, 32]' --quiet
  fnsearch search my.toml --storage sqlite:///study.db

output: a progress bar on stderr (plain lines when it is not a terminal), then a table of the
chosen policy and the baselines on the test rows, and the run folder.

"""
        + _EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    spec_args(s)
    s.add_argument("--out", metavar="DIR", help="the run folder (default: runs/<study name>)")
    s.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL (default: a journal file "
        "in the run folder); also FNSEARCH_STORAGE",
    )

    w = sub.add_parser(
        "worker",
        help="join a study in shared storage and run trials",
        description="Join (or create) the spec's study in shared storage and run "
        "trials until it holds N finished trials in total. Run one per machine or GPU on "
        "PostgreSQL; the trials of a worker that dies are run again by the others. Writes no "
        "run folder (see `fnsearch report`).",
        epilog="examples:\n  fnsearch worker studies/german_credit.toml --storage "
        "postgresql://user:pw@db/fnsearch --trials 256\n  FNSEARCH_STORAGE=postgresql://user:pw@db/"
        "fnsearch fnsearch worker studies/german_credit.toml --set model.device=cuda:1\n"
        "then, from any machine:\n  fnsearch report --storage postgresql://user:pw@db/fnsearch "
        "--study german_credit --out runs/gc\n\n" + _EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    spec_args(w)
    w.add_argument("--storage", metavar="URL", help="shared storage URL (or FNSEARCH_STORAGE)")

    r = sub.add_parser(
        "report",
        help="rebuild summary.json and report.html from storage",
        description="Rebuild summary.json and report.html from whatever the storage holds.",
        epilog="examples:\n  fnsearch report runs/german_credit\n  fnsearch "
        "report --storage postgresql://u:pw@db/fn --study german_credit --out runs/gc\n\n"
        + _EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("run_dir", nargs="?", help="a run folder")
    r.add_argument("--storage", metavar="URL", help="storage URL holding the study")
    r.add_argument("--study", metavar="NAME", help="study name (with --storage)")
    r.add_argument("--out", metavar="DIR", help="where to write (default: the run folder)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress lines")

    pr = sub.add_parser(
        "predict",
        help="score new rows with a run's chosen model",
        description="Score DATA (CSV or Parquet) with the run's chosen model. Output "
        "is CSV with columns score,decision in input order: score = sigmoid of the "
        "model's logit (not a calibrated probability when pos_weight != 1), "
        "decision = 1 when score >= the chosen threshold.",
        epilog="examples:\n  fnsearch predict runs/german_credit applicants.csv --out scores.csv\n"
        "  fnsearch predict runs/german_credit applicants.parquet | head\n\n"
        "exit codes: 0 ok; 2 a user mistake (a missing feature column, no run folder, ...); 1 a bug",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("run_dir", help="a run folder written by `fnsearch search`")
    pr.add_argument("data", help="CSV or Parquet with the feature columns (label optional)")
    pr.add_argument("--out", metavar="FILE", help="write CSV here (default: stdout)")

    sub.add_parser(
        "datasets",
        help="list the bundled datasets (builtin:NAME)",
        description="List the datasets bundled with fnsearch, for [data] path = 'builtin:NAME'.",
        epilog="example:\n  fnsearch datasets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p


def _version() -> str:
    from ._version import __version__

    return __version__


def _overrides(pairs: list[str]) -> dict[str, Any]:
    from .spec import parse_override_value

    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise SpecError(
                f"--set {pair!r} must look like section.key=value, e.g. model.epochs=50"
            )
        out[key.strip()] = parse_override_value(value.strip())
    return out


# The per-round log line (api's progress log, kept in run.log); on stderr the display shows it.
_ROUND_LOG = "trials %d/%d"


class _StderrHandler(logging.Handler):
    """Log lines to whatever ``sys.stderr`` is at the time (tests swap it), or through the
    progress display while one is active, so they print above its bar."""

    def __init__(self, display: Display | None = None) -> None:
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.display is None:
                print(f"fnsearch: {record.getMessage()}", file=sys.stderr, flush=True)
            elif not str(record.msg).startswith(_ROUND_LOG):
                self.display.message(record.getMessage())
        except Exception:  # a closed or broken stream must never break the search
            self.handleError(record)


def _setup_logging(quiet: bool, display: Display | None = None) -> None:
    log = logging.getLogger("fnsearch")
    log.setLevel(logging.INFO)
    for h in [h for h in log.handlers if isinstance(h, _StderrHandler)]:
        log.removeHandler(h)
    # Quiet drops progress lines, not warnings (a dropped journal entry, say).
    handler = _StderrHandler(display)
    if quiet:
        handler.setLevel(logging.WARNING)
    log.addHandler(handler)
    log.propagate = False


def _print_result(result, run_dir: Path | None) -> None:
    """The short table at the end: the chosen policy, its test cost, the baselines, the folder."""
    from .words import baseline_words, policy_words

    out = sys.stdout
    b, t = result.best, result.test
    if b is None or t is None:
        print(
            f"no trial completed ({result.trials['failed']} failed); no weight was chosen - the "
            "report lists the reasons",
            file=out,
        )
    else:
        threshold = b.get("threshold", 0.5)
        at = (
            ""
            if threshold is None or abs(threshold - 0.5) < 1e-12
            else f" at threshold {threshold:.3g}"
        )
        trial = "" if b.get("trial") is None else f", trial {b['trial']}"
        print(
            f"chosen: pos_weight {b['pos_weight']:.4g}{at} ({policy_words(b['policy'])}{trial})",
            file=out,
        )
    rows = ([("chosen", t)] if t is not None else []) + list(result.baselines.items())
    n_test = result.data["rows"]["test"]
    print(
        f"{f'policy ({n_test} test rows)':<36}{'cost/example':>13}{'95% interval':>22}{'savings':>9}",
        file=out,
    )
    for name, s in rows:
        lo, hi = s["ci95"]
        print(
            f"{baseline_words(name):<36}{s['cost_per_example']:>13.4f}"
            f"{f'{lo:.4f} to {hi:.4f}':>22}{s['savings']:>9.1%}",
            file=out,
        )
    if run_dir is not None:
        print(f"run folder: {run_dir}", file=out)
        print(f"report: {run_dir / 'report.html'}", file=out)


def _search(args: argparse.Namespace) -> int:
    from .api import tune
    from .spec import load_spec

    overrides = _overrides(args.set)
    out = args.out
    if out is not None and not out.strip():  # an unset shell variable: never the current folder
        raise SpecError("--out is empty; give the run folder, e.g. --out runs/mystudy")
    if out is None:
        name = load_spec(args.spec, overrides).study["name"]
        # A study name may hold anything; the default folder name keeps letters (any script),
        # digits, '.', '_' and '-', so it can never hold a path separator or climb with '..'.
        out = Path("runs") / (re.sub(r"[^\w.-]+", "_", name).strip("._") or "study")
    result = tune(
        args.spec,
        overrides=overrides,
        out=out,
        storage=args.storage,
        n_trials=args.trials,
        progress=args.progress,
    )
    args.end_progress()  # the bar's last line, then the table below it
    _print_result(result, Path(out))
    return EXIT_OK if result.best is not None else EXIT_NO_TRIAL


def _worker(args: argparse.Namespace) -> int:
    from .api import work

    done = work(
        args.spec,
        overrides=_overrides(args.set),
        storage=args.storage,
        n_trials=args.trials,
        progress=args.progress,
    )
    args.end_progress()
    stopped = f"; {done.stopped_reason}" if done.stopped_reason else ""
    print(
        f"study holds {done.finished} finished trial(s); {done.complete} complete, "
        f"{done.failed} failed{stopped}",
        file=sys.stdout,
    )
    return EXIT_OK if done.complete > 0 else EXIT_NO_TRIAL


def _report(args: argparse.Namespace) -> int:
    from .api import rebuild

    if args.run_dir is None and (args.storage is None or args.study is None or args.out is None):
        raise SpecError("give a run folder, or --storage URL --study NAME --out DIR")
    result = rebuild(args.run_dir, storage=args.storage, study_name=args.study, out=args.out)
    target = Path(args.out or args.run_dir)
    _print_result(result, target)
    return EXIT_OK if result.best is not None else EXIT_NO_TRIAL


def _predict(args: argparse.Namespace) -> int:
    from .predict import predict_file

    if args.out:
        _check_output_file(Path(args.out))  # before scoring: a bad --out should fail fast
    frame = predict_file(args.run_dir, args.data)
    if args.out:
        from .runfolder import _atomic

        _atomic(Path(args.out), lambda p: frame.to_csv(p, index=False))
    else:
        frame.to_csv(sys.stdout, index=False)
    return EXIT_OK


def _check_output_file(path: Path) -> None:
    if path.is_dir():
        raise FnsearchError(f"--out {str(path)!r} is a folder; give a file name, e.g. scores.csv")
    if not path.parent.is_dir():
        raise FnsearchError(
            f"--out {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first"
        )
    if not os.access(path.parent, os.W_OK):
        raise FnsearchError(f"--out {str(path)!r}: cannot write in {str(path.parent)!r}")


def _datasets(args: argparse.Namespace) -> int:
    from .datasets import BUILTINS

    for d in BUILTINS.values():
        drop = f", drop {list(d.drop)}" if d.drop else ""
        print(
            f"builtin:{d.name:<15} label {d.label!r}, positive {d.positive!r}{drop}\n"
            f"  {d.origin}\n  costs: {d.costs}"
        )
    return EXIT_OK


_COMMANDS = {
    "search": _search,
    "worker": _worker,
    "report": _report,
    "predict": _predict,
    "datasets": _datasets,
}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a search as Ctrl-C does: the round is failed cleanly


def _scrubbed(text: str, args: argparse.Namespace) -> str:
    from .spec import url_secrets

    for secret in url_secrets(getattr(args, "storage", None)) + url_secrets(
        os.environ.get("FNSEARCH_STORAGE")
    ):
        text = text.replace(secret, "***")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    args = _parser().parse_args(argv)
    quiet = getattr(args, "quiet", False) or args.command in ("predict", "datasets")
    display = None
    if not quiet and args.command in ("search", "worker"):
        from .progress import make_display

        display = make_display(sys.stderr)
    args.progress = display.update if display is not None else None
    args.end_progress = display.close if display is not None else lambda: None
    _setup_logging(quiet, display)
    on_term = signal.getsignal(signal.SIGTERM)
    catch_term = (
        args.command in ("search", "worker")
        and on_term is not None
        and threading.current_thread() is threading.main_thread()
    )
    if catch_term:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            return _COMMANDS[args.command](args)
        finally:
            if display is not None:
                display.close()  # the bar's last state stays on screen, above what follows
            _setup_logging(quiet)
    except FnsearchError as e:
        print(f"fnsearch: error: {_scrubbed(str(e), args)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(
            "fnsearch: interrupted; finished trials are stored - rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # a bug: the traceback helps, the storage password must not be in it
        print(_scrubbed(traceback.format_exc(), args), file=sys.stderr, end="")
        return EXIT_BUG
    finally:
        if catch_term:
            signal.signal(signal.SIGTERM, on_term)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
