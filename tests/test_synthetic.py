"""The known-answer problem: its posterior is exact, and fnsearch's answers are measured against it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fnsearch import tune
from fnsearch.predict import Predictor
from fnsearch.synthetic import (
    FEATURES,
    MEAN_POS,
    PREVALENCE,
    VAR_POS,
    bayes_cost,
    posterior,
    sample,
)


@pytest.mark.parametrize("equal", [False, True])
def test_posterior_matches_scipy_densities(equal):
    """Check the closed-form posterior against Bayes' rule with scipy's Gaussian densities."""
    frame = sample(200, seed=3, equal_covariance=equal)
    x = frame[list(FEATURES)].to_numpy()
    pos = multivariate_normal(MEAN_POS, np.diag(np.ones(4) if equal else VAR_POS)).pdf(x)
    neg = multivariate_normal(np.zeros(4), np.eye(4)).pdf(x)
    want = PREVALENCE * pos / (PREVALENCE * pos + (1 - PREVALENCE) * neg)
    np.testing.assert_allclose(posterior(frame, equal_covariance=equal), want, rtol=1e-9)


def test_sample_is_seeded_with_the_stated_prevalence():
    """Check the generator: same seed same rows, ~10% positives, negatives centred at 0."""
    a, b = sample(20_000, seed=1), sample(20_000, seed=1)
    assert a.equals(b) and abs(a["y"].mean() - 0.1) < 0.01
    assert np.abs(a.loc[a["y"] == 0, list(FEATURES)].mean().to_numpy()).max() < 0.03


def fresh_regret(result, fresh, bayes, fn=10.0, fp=1.0):
    pred = Predictor(result.to_dict(), result.model_state, result.preprocessor).predict(fresh)
    decide = pred["decision"].to_numpy().astype(bool)
    y = fresh["y"].to_numpy().astype(bool)
    return float((fn * (y & ~decide) + fp * (~y & decide)).mean()) / bayes - 1


@pytest.mark.slow
def test_theory_weight_is_recovered_when_the_model_is_well_specified(tmp_path):
    """Check that with equal covariances (an exactly logistic posterior) and a logistic model the
    theory weight lies on the plateau, the choice stays at theory, and regret is near zero."""
    path = tmp_path / "eq.parquet"
    sample(4000, seed=0, equal_covariance=True).to_parquet(path)
    spec = {"data": {"path": str(path), "label": "y", "positive": 1}, "cost": {"fn": 10, "fp": 1}}
    result = tune(spec, overrides={"model.kind": "logistic", "study.n_trials": 24})
    assert result.cost["theory_weight"] == pytest.approx(10.0)
    assert result.best["plateau"][0] <= 10.0 <= result.best["plateau"][1]
    assert result.best["policy"] == "theory_weight"
    fresh = sample(100_000, seed=77, equal_covariance=True)
    assert fresh_regret(result, fresh, bayes_cost(10, 1, equal_covariance=True)) < 0.02


@pytest.mark.slow
def test_mlp_regret_on_the_quadratic_boundary_is_small(tmp_path):
    """Check that the default MLP's chosen policy comes within 5% of the Bayes cost where a linear
    model is ~15% off (one validation split and 16 trials here, to keep the suite fast)."""
    path = tmp_path / "q.parquet"
    sample(4000, seed=0).to_parquet(path)
    spec = {"data": {"path": str(path), "label": "y", "positive": 1}, "cost": {"fn": 10, "fp": 1}}
    result = tune(spec, overrides={"study.n_trials": 16, "search.folds": 1})
    assert fresh_regret(result, sample(100_000, seed=78), bayes_cost(10, 1)) < 0.05
