"""The statistics of the final ranking report: paired significance with Holm's correction, the places separated from
the next, and the rankings by severity with their agreement with the official ranking (Kendall's tau)."""
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from bootstrap_ci import N_BOOTSTRAP
from compare import ranks

ALPHA = 0.05


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values of a 1-d array, in its order: the k-th smallest is multiplied by the number
    of hypotheses not yet rejected, made non-decreasing and capped at 1 (controls the family-wise error rate)."""
    p_values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    remaining = len(p_values) - np.arange(len(p_values))
    adjusted = np.empty_like(p_values)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(remaining * p_values[order]))
    return adjusted


def replicates_needed(n_teams: int, alpha: float = ALPHA) -> int:
    """Bootstrap replicates for which a pair can be separated under Holm's correction at all.

    A bootstrap p-value is never below 2/(B+1), and Holm's first step compares the smallest with alpha / pairs: B is
    chosen so that 2/(B+1) is at most half of that, and never below the scorer's 1000.
    """
    pairs = n_teams * (n_teams - 1) // 2
    return max(N_BOOTSTRAP, math.ceil(4 * pairs / alpha))


@dataclass(frozen=True)
class Significance:
    """Pairwise tests of the primary score: (m, m) matrices in the teams' order, 1 on the diagonal."""

    p_value: np.ndarray  # two-sided paired bootstrap p-value
    adjusted: np.ndarray  # Holm-adjusted over the m(m-1)/2 pairs
    alpha: float

    @property
    def separated(self) -> np.ndarray:
        """Whether each pair's difference is significant after the correction."""
        return self.adjusted < self.alpha


def pairwise_significance(p_value: np.ndarray, alpha: float = ALPHA) -> Significance:
    """The (m, m) paired bootstrap p-values of compare.py, Holm-adjusted as one family of m(m-1)/2 pairs."""
    upper = np.triu_indices(p_value.shape[0], k=1)
    adjusted = np.ones_like(p_value)
    adjusted[upper] = holm_adjusted(p_value[upper])
    adjusted.T[upper] = adjusted[upper]
    return Significance(p_value, adjusted, alpha)


def separated_from_next(significance: Significance) -> list[bool]:
    """For each place but the last (the teams in official order): is it separated from the next place?"""
    return [bool(significance.separated[k, k + 1]) for k in range(significance.adjusted.shape[0] - 1)]


def rankings_by_scheme(values: dict[str, np.ndarray], aggregated: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each scheme's ranks of the teams (values: scheme -> (m,) scores), plus 'mean_rank' (the mean of the
    `aggregated` schemes' ranks) and 'by_mean_rank' (teams ranked by it, lowest mean first)."""
    rankings = {name: ranks(v) for name, v in values.items()}
    mean_rank = np.mean([rankings[name] for name in aggregated], axis=0)
    return rankings | {"mean_rank": mean_rank, "by_mean_rank": ranks(-mean_rank)}


def kendall_tau(official: np.ndarray, other: np.ndarray) -> float:
    """Kendall's tau-b between two rankings of the same teams (1 = same order, -1 = reversed; ties allowed)."""
    return float(kendalltau(official, other).statistic)


def bootstrap_tau(official: np.ndarray, replicate_ranks: np.ndarray) -> np.ndarray:
    """Kendall's tau between the official ranking and each bootstrap replicate's ranking (B,)."""
    return np.array([kendall_tau(official, r) for r in replicate_ranks])
