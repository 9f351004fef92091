"""The report's statistics, pure and on plain numbers: the treatment/control comparison,
the sample-ratio-mismatch p-value, Beta credible intervals and the reward variance.

Every distribution function comes from scipy (imported on use: the settings import this
module through the criteria). The comparison uses the interval of the
view ``bandit_experiment_readout`` (a delta-method interval on the log of the ratio of
means); written with each variant's variance, the one formula covers the rates, where it
is exactly the view's, and the weighted reward per impression, which the view lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEVEL = 0.95
# The core metrics, in display order: metric name -> what the page calls it.
CORE_METRICS = {
    "ctr": "CTR",
    "add_to_cart_rate": "add-to-cart rate",
    "purchase_rate": "purchase rate",
    "reward_per_impression": "reward per impression",
}
# The outcome event types and the count column of each.
OUTCOMES = {"click": "clicked", "add_to_cart": "carted", "purchase": "purchased"}


@dataclass(frozen=True)
class Totals:
    """Sums over impressions of one group (a variant, or the explore slots of a surface)."""

    impressions: int = 0
    clicked: int = 0
    carted: int = 0
    purchased: int = 0
    reward_sum: float = 0.0  # with the configured weights, not normalised
    reward_sq_sum: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.impressions + other.impressions,
            self.clicked + other.clicked,
            self.carted + other.carted,
            self.purchased + other.purchased,
            self.reward_sum + other.reward_sum,
            self.reward_sq_sum + other.reward_sq_sum,
        )

    def mean_and_variance(self, metric: str) -> tuple[float, float]:
        """Per-impression mean and (population) variance of a core metric."""
        n = self.impressions
        if metric == "reward_per_impression":
            mean = self.reward_sum / n
            return mean, max(self.reward_sq_sum / n - mean * mean, 0.0)
        count = {
            "ctr": self.clicked,
            "add_to_cart_rate": self.carted,
            "purchase_rate": self.purchased,
        }[metric]
        rate = count / n
        return rate, rate * (1.0 - rate)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric of one surface and experiment."""

    surface: str
    experiment: str
    metric: str
    control_impressions: int
    treatment_impressions: int
    control_value: float
    treatment_value: float
    relative_difference: float | None  # treatment / control - 1
    ci_low: float | None
    ci_high: float | None


def ratio_interval(
    treatment: tuple[float, float, int], control: tuple[float, float, int], level: float = LEVEL
) -> tuple[float | None, float | None, float | None]:
    """Relative difference treatment / control - 1 and its interval, from each side's
    (mean, variance, n): se(log ratio)^2 = var_t / (n_t mean_t^2) + var_c / (n_c mean_c^2).
    For a rate p of x events that is (1 - p_t) / x_t + (1 - p_c) / x_c, the view's formula.
    None where a mean is zero (no ratio, or no log)."""
    (m_t, v_t, n_t), (m_c, v_c, n_c) = treatment, control
    if m_c <= 0 or n_c <= 0 or n_t <= 0:
        return None, None, None
    difference = m_t / m_c - 1.0
    if m_t <= 0:
        return difference, None, None
    from scipy import stats

    se = math.sqrt(v_t / (n_t * m_t * m_t) + v_c / (n_c * m_c * m_c))
    z = stats.norm.ppf(0.5 + level / 2.0)
    log_ratio = math.log(m_t / m_c)
    return difference, math.expm1(log_ratio - z * se), math.expm1(log_ratio + z * se)


def compare(surface: str, experiment: str, treatment: Totals, control: Totals) -> list[Comparison]:
    """The four core metrics of treatment against control (none without both variants)."""
    if treatment.impressions <= 0 or control.impressions <= 0:
        return []
    rows = []
    for metric in CORE_METRICS:
        m_t, v_t = treatment.mean_and_variance(metric)
        m_c, v_c = control.mean_and_variance(metric)
        diff, low, high = ratio_interval(
            (m_t, v_t, treatment.impressions), (m_c, v_c, control.impressions)
        )
        rows.append(
            Comparison(
                surface,
                experiment,
                metric,
                control.impressions,
                treatment.impressions,
                m_c,
                m_t,
                diff,
                low,
                high,
            )
        )
    return rows


def srm_p_value(
    control_impressions: int, treatment_impressions: int, holdout_percent: float
) -> float | None:
    """Chi-square test (one degree of freedom) of the observed control share against the
    configured holdout: a small p-value means assignment or logging is broken."""
    total = control_impressions + treatment_impressions
    if total <= 0 or not 0 < holdout_percent < 100:
        return None
    from scipy import stats

    share = holdout_percent / 100.0
    expected = [total * share, total * (1.0 - share)]
    result = stats.chisquare([control_impressions, treatment_impressions], f_exp=expected)
    return float(result.pvalue)


def beta_interval(alpha: float, beta: float, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and equal-tailed credible interval of Beta(alpha, beta)."""
    from scipy import stats

    tail = (1.0 - level) / 2.0
    low, high = stats.beta.ppf([tail, 1.0 - tail], alpha, beta)
    return alpha / (alpha + beta), float(low), float(high)


@dataclass(frozen=True)
class RewardVariance:
    """The normalised per-impression reward of a surface's explore impressions."""

    surface: str
    impressions: int
    mean: float
    variance: float
    standard_error: float


@dataclass(frozen=True)
class OutcomeVariance:
    """One outcome type on a surface's explore impressions: its rate, the variance of its
    indicator, and the variance of its weighted, normalised indicator as a share of the
    reward's variance (outcomes overlap, the reward being the largest weight, so the shares
    need not add up to 1)."""

    surface: str
    event_type: str
    weight: float
    rate: float
    variance: float
    weighted_variance: float
    share_of_reward_variance: float | None


def reward_variance(
    surface: str, totals: Totals, weights: dict[str, float]
) -> tuple[RewardVariance, list[OutcomeVariance]] | None:
    """Variance of the reward normalised to [0, 1] (divided by the largest weight) and of
    each outcome, for judging the reward weights. None without impressions."""
    n = totals.impressions
    if n <= 0:
        return None
    w_max = max(weights.values())
    mean = totals.reward_sum / (n * w_max)
    variance = max(totals.reward_sq_sum / (n * w_max * w_max) - mean * mean, 0.0)
    summary = RewardVariance(surface, n, mean, variance, math.sqrt(variance / n))
    outcomes = []
    for event_type, column in OUTCOMES.items():
        rate = getattr(totals, column) / n
        indicator = rate * (1.0 - rate)
        weighted = (weights[event_type] / w_max) ** 2 * indicator
        share = weighted / variance if variance > 0 else None
        outcomes.append(
            OutcomeVariance(
                surface, event_type, weights[event_type], rate, indicator, weighted, share
            )
        )
    return summary, outcomes
