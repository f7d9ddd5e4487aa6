"""The report in a real browser: headless Chromium (the Debian package, driven by Playwright) with
the network off. Every figure must draw its SVG, hovers must name the trial, nothing may reach the
console as an error, and nothing may be requested but the file itself.

Chromium starts once per session. Without it the tests skip, except where ``CI`` is set: there
``make test`` installs it, so a browser that cannot start is a failure. Screenshots and open times
go to ``test-artifacts/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from fnsearch import tune
from fnsearch.report import _figures as F
from fnsearch.report import figures

from .conftest import FAST, ROOT

CHROMIUM = Path(os.environ.get("FNSEARCH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
# A closed network makes Chromium's background services retry forever; these switch them off.
# launch() gives every run a fresh, temporary profile (user-data-dir) of its own.
ARGS = [
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
OPEN_TIMEOUT_MS = 30_000

SPEC = {
    "study": {"name": "gc_browser"},
    "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
    "cost": {"fn": 5, "fp": 1},
}
# Enough trials for figures a person can judge in the screenshot, still about two seconds.
SETTINGS = {**FAST, "study.n_trials": 24, "model.epochs": 20}
DIVERGE = {**FAST, "study.n_trials": 3, "search.low": 1e36, "search.high": 1e38, "model.lr": 10.0}


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser tests cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        _unavailable(f"playwright is not installed ({e}); run `make install`")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing; `make test` installs the Debian package chromium")
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS, timeout=60_000
        )
    except Exception as e:
        pw.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start: {e}")
    yield chromium
    chromium.close()
    pw.stop()


class Opened:
    """A report open in a page, with what the page did while loading."""

    def __init__(self, page, seconds: float, requests: list[str], errors: list[str]):
        self.page, self.seconds, self.requests, self.errors = page, seconds, requests, errors

    def text(self) -> str:
        return self.page.inner_text("body")


@pytest.fixture
def open_report(browser):
    contexts = []

    def _open(path: Path, n_figures: int) -> Opened:
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))

        def route(r):
            requests.append(r.request.url)
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)
        start = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=OPEN_TIMEOUT_MS)
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= n",
            arg=n_figures,
            timeout=OPEN_TIMEOUT_MS,
        )
        return Opened(page, time.perf_counter() - start, requests, errors)

    yield _open
    for c in contexts:
        c.close()


def _record(name: str, opened: Opened, path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    opened.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    timings = ARTIFACTS / "browser-timings.json"
    data = json.loads(timings.read_text()) if timings.is_file() else {}
    data[name] = {"open_seconds": round(opened.seconds, 3), "bytes": path.stat().st_size}
    timings.write_text(json.dumps(data, indent=2) + "\n")


def _figure_state(page) -> list[dict]:
    return page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
            id: gd.id,
            svgs: gd.querySelectorAll('svg.main-svg').length,
            traces: gd._fullData.length,
            drawn: gd.querySelectorAll('.trace, .hm, image').length,
            title: (gd.querySelector('.gtitle') || {}).textContent || ''
        }))"""
    )


def _hover_text(page, div_id: str, curve: int, point: int) -> str:
    # A real mouse over the point: the page's own hover, unified or not, is what gets read.
    x, y = page.evaluate(
        """([id, c, p]) => {
            const gd = document.getElementById(id);
            gd.scrollIntoView({block: 'center'});
            const t = gd._fullData[c], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.c2p(t.x[p]), box.top + ya._offset + ya.c2p(t.y[p])];
        }""",
        [div_id, curve, point],
    )
    page.mouse.move(x, y)
    layer = page.locator(f"#{div_id} .hoverlayer")
    page.wait_for_function(
        "id => document.querySelector('#' + id + ' .hoverlayer').textContent.length > 0",
        arg=div_id,
        timeout=5_000,
    )
    text = layer.text_content()
    page.mouse.move(0, 0)
    return text


def _assert_clean(opened: Opened, expected: list[tuple[str, object]]) -> None:
    assert opened.errors == []
    assert all(u.startswith("file://") for u in opened.requests), opened.requests
    state = _figure_state(opened.page)
    assert [s["id"] for s in state] == [f"fig-{i}" for i, _ in expected]
    for s, (_, fig) in zip(state, expected, strict=True):
        assert s["svgs"] >= 1, s
        assert s["traces"] == len(fig.data), s
        assert s["drawn"] >= 1, s
        assert s["title"] == fig.layout.title.text, s


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "gc"
    return tune(SPEC, overrides=SETTINGS, out=out), out


def test_report_renders_every_figure_offline(searched, open_report):
    """Check that every figure draws its SVG with the network off, no console error, no request
    beyond the file, the chosen weight in the page text, and hovers naming trial, weight, FN, FP
    and cost."""
    result, out = searched
    expected = figures(result)
    opened = open_report(out / "report.html", len(expected))
    _record("report-german-credit", opened, out / "report.html")
    _assert_clean(opened, expected)
    assert opened.requests == [(out / "report.html").resolve().as_uri()]
    text = opened.text()
    assert f"pos_weight = {result.best['pos_weight']:.4g}" in text
    assert f"{result.test['cost_per_example']:.4f}" in text
    assert "Every trial failed" not in text

    info = F.cost_info(result.trials_table, result.best, result.cost["theory_weight"])
    k = len(info.weight) // 2
    for div, curve in (("fig-cost", 1), ("fig-errors", 0), ("fig-precision-recall", 1)):
        hover = _hover_text(opened.page, div, curve, k)
        assert f"trial {info.number[k]}" in hover, (div, hover)
        assert f"pos_weight {info.weight[k]:.4g}" in hover, (div, hover)
        assert f"FN {info.fn[k]}, FP {info.fp[k]}" in hover, (div, hover)
        assert f"validation cost {info.value[k]:.4f}" in hover, (div, hover)
    history = F.history_info(result.trials_table)
    # the costliest trial: never on the best-so-far line, whose hover would win on a tie
    j = int(np.argmax(history.value))
    hover = _hover_text(opened.page, "fig-history", 0, j)
    assert f"trial {history.number[j]}" in hover and f"FN {history.fn[j]}" in hover
    assert opened.seconds < OPEN_TIMEOUT_MS / 1000


def test_report_of_a_study_where_every_trial_failed(tmp_path, open_report):
    """Check that a report with no completed trial opens, says so, draws its figures, and shows
    each failure's reason on hover."""
    out = tmp_path / "failed"
    result = tune(SPEC, overrides=DIVERGE, out=out)
    assert result.trials["complete"] == 0 and result.best is None
    expected = figures(result)
    assert [i for i, _ in expected] == ["baselines", "states"]
    opened = open_report(out / "report.html", len(expected))
    _record("report-all-failed", opened, out / "report.html")
    _assert_clean(opened, expected)
    text = opened.text()
    assert "Every trial failed" in text and "No trial completed" in text
    reason = result.trials_table["fail_reason"].iloc[0]
    assert reason and reason in text  # the table of reasons
    hover = _hover_text(opened.page, "fig-states", 2, 0)  # the "failed" trace
    assert "trial 0" in hover and reason in hover


def test_user_text_stays_text_in_the_browser(tmp_path, open_report):
    """Check that a study name holding markup is shown literally and runs nothing."""
    name = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
    out = tmp_path / "escaped"
    result = tune({**SPEC, "study": {"name": name}}, overrides=FAST, out=out)
    opened = open_report(out / "report.html", len(figures(result)))
    assert opened.errors == []
    assert name in opened.page.inner_text("h1")
    assert opened.page.title() == f"fnsearch report: {name}"
    assert opened.page.locator("main img, h1 b").count() == 0
    assert all(u.startswith("file://") for u in opened.requests)
