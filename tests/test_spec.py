"""Spec loading: defaults, precedence, overrides, and one clear message per mistake."""

from __future__ import annotations

import pytest

from fnsearch.errors import SpecError
from fnsearch.spec import DEFAULTS, load_spec, mask_url, parse_override_value, url_secrets

from .conftest import ROOT, write_spec

MINIMAL = {
    "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
    "cost": {"fn": 5, "fp": 1},
}


def with_(section: str, **keys):
    d = {s: dict(v) for s, v in MINIMAL.items()}
    d.setdefault(section, {}).update(keys)
    return d


def test_minimal_spec_gets_every_default():
    """Check that a spec with only data and costs is completed from DEFAULTS."""
    spec = load_spec(MINIMAL)
    assert spec.model == DEFAULTS["model"]
    assert spec.search == DEFAULTS["search"]
    assert spec.cost == {"fn": 5, "fp": 1, "tp": 0.0, "tn": 0.0}
    assert spec.study["name"] == "fnsearch"


def test_bundled_specs_load():
    """Check that the specs in studies/ are valid and named after their files."""
    for name in ("german_credit", "breast_cancer", "churn_tv"):
        spec = load_spec(ROOT / "studies" / f"{name}.toml")
        assert spec.study["name"] == name


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (with_("model", epoch=10), r"unknown key \[model\] epoch; did you mean 'epochs'"),
        (with_("modle", epochs=10), r"unknown section \[modle\]; did you mean 'model'"),
        (with_("model", epochs="ten"), r"\[model\] epochs must be an integer >= 1, got 'ten'"),
        (with_("model", epochs=True), r"\[model\] epochs must be an integer"),
        (with_("search", low=10, high=1), r"low \(10\) must be below high \(1\)"),
        (with_("search", low=0), r"\[search\] low must be \"auto\" or a number > 0"),
        (with_("search", low=-1), r"\[search\] low must be"),
        (with_("study", n_trials=0), r"\[study\] n_trials must be an integer >= 1, got 0"),
        (with_("search", sampler="random"), r"sampler must be one of 'tpe', 'gp', 'grid'"),
        (
            with_("cost", fn=-1),
            r"\[cost\] fn must be a number from 0 to 1e\+15 or the name of a cost column",
        ),
        (with_("cost", fn=1, tp=2), r"fn \(1\) must exceed tp \(2\)"),
        (with_("cost", fp=0), r"fp \(0\) must exceed tn \(0\)"),
        (with_("data", val=0.5, test=0.45), r"val \+ test"),
        (with_("data", val=1.5), r"\[data\] val must be a fraction"),
        (with_("model", device="gpu"), r"device must be 'auto', 'cpu', 'cuda'"),
        ({"cost": {"fn": 5, "fp": 1}}, r"\[data\] path is required"),
        (with_("study", seed=2**40), r"\[study\] seed must be an integer from 0 to 4294967295"),
        (with_("data", encoding="klingon"), r"\[data\] encoding must be a text encoding"),
        (with_("data", decimal=","), r"decimal and sep are both ','"),
        (with_("model", hidden=[0]), r"hidden must be a list, each item an integer >= 1"),
    ],
)
def test_mistakes_raise_spec_error(spec, match):
    """Check that each mistake raises SpecError naming the key and what is allowed."""
    with pytest.raises(SpecError, match=match):
        load_spec(spec)


def test_toml_syntax_error_gives_the_line(tmp_path):
    """Check that a TOML syntax error names the file and the line."""
    path = write_spec(tmp_path / "bad.toml", '[data]\npath = "x.csv"\nlabel = \n')
    with pytest.raises(SpecError, match=r"not valid TOML: .*line 3"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    """Check that a missing spec file is a SpecError naming it."""
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_precedence_defaults_file_env_overrides(tmp_path, monkeypatch):
    """Check defaults < spec file < FNSEARCH_STORAGE < overrides < explicit arguments."""
    path = write_spec(
        tmp_path / "s.toml",
        """
[study]
storage = "sqlite:///from_file.db"
n_trials = 10
[data]
path = "data.csv"
label = "y"
positive = 1
[cost]
fn = 2
fp = 1
""",
    )
    assert load_spec(path).study["storage"] == "sqlite:///from_file.db"
    monkeypatch.setenv("FNSEARCH_STORAGE", "sqlite:///from_env.db")
    assert load_spec(path).study["storage"] == "sqlite:///from_env.db"
    spec = load_spec(path, {"study.storage": "sqlite:///override.db", "model.hidden": [4, 4]})
    assert spec.study["storage"] == "sqlite:///override.db"
    assert spec.model["hidden"] == [4, 4]
    spec = load_spec(path, {"study.n_trials": 3}, storage="sqlite:///arg.db", n_trials=7)
    assert (spec.study["storage"], spec.study["n_trials"]) == ("sqlite:///arg.db", 7)
    # relative data paths are taken from the spec file's folder
    assert spec.data["path"] == str((tmp_path / "data.csv").resolve())


def test_override_values_parse_as_toml_then_fall_back_to_text():
    """Check that --set values are TOML values when they parse, plain strings otherwise."""
    assert parse_override_value("[32, 16]") == [32, 16]
    assert parse_override_value("1e-3") == 1e-3
    assert parse_override_value("true") is True
    assert parse_override_value("risk") == "risk"
    assert parse_override_value('"7"') == "7"


def test_bad_override_key():
    """Check that an override with an unknown key suggests the right one."""
    with pytest.raises(SpecError, match="did you mean 'batch_size'"):
        load_spec(MINIMAL, {"model.batchsize": 32})
    with pytest.raises(SpecError, match=r"section\.key"):
        load_spec(MINIMAL, {"epochs": 3})


def test_storage_password_is_masked():
    """Check that a storage password never appears in the recorded spec."""
    url = "postgresql://alice:s3cret@db.example:5432/fn"
    assert mask_url(url) == "postgresql://alice:***@db.example:5432/fn"
    spec = load_spec(MINIMAL, storage=url)
    assert "s3cret" not in str(spec.to_dict())
    assert spec.to_dict(mask_secrets=False)["study"]["storage"] == url
    # libpq also takes a password as a query parameter; percent-encoding is undone for scrubbing
    url = "postgresql://bob@db/fn?sslmode=require&password=p%40ss&x=1"
    assert mask_url(url) == "postgresql://bob@db/fn?sslmode=require&password=***&x=1"
    assert url_secrets(url) == ["p%40ss", "p@ss"]
    assert url_secrets("postgresql://a:b@h/db") == ["b"] and url_secrets("sqlite:///x.db") == []
