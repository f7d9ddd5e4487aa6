"""Policies and baselines in words, shared by the report and the command line's final table.

Names not listed (a policy added later) fall back to their identifier with spaces, so a new policy
shows up readably before anyone writes its words.
"""

from __future__ import annotations

__all__ = ["BASELINE_WORDS", "POLICY_WORDS", "baseline_words", "policy_words"]

# ``best.policy`` in summary.json: how the chosen model decides.
POLICY_WORDS = {
    "searched": "the searched weight at threshold 0.5",
    "searched_tuned_threshold": "the searched weight with a tuned threshold",
    "tuned_threshold": "w = 1 (plain BCE) with a tuned threshold",
    "theory_weight": "the theory weight w* at threshold 0.5",
}

# Keys of ``baselines`` in summary.json (and "chosen" for the chosen policy's test row).
BASELINE_WORDS = {
    "chosen": "chosen policy",
    "unweighted": "unweighted (w = 1, threshold 0.5)",
    "theory_weight": "theory weight (w*, threshold 0.5)",
    "tuned_threshold": "tuned threshold (w = 1)",
    "bayes_threshold": "Bayes threshold (w = 1)",
    "searched": "searched weight (threshold 0.5)",
    "searched_tuned_threshold": "searched weight, tuned threshold",
    "all_negative": "flag nobody",
    "all_positive": "flag everybody",
}


def policy_words(policy: str) -> str:
    """A chosen policy's name in words."""
    return POLICY_WORDS.get(policy, policy.replace("_", " "))


def baseline_words(name: str) -> str:
    """A baseline's (or "chosen") name in words."""
    return BASELINE_WORDS.get(name, name.replace("_", " "))
