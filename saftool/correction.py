"""Judge-corrected rates: what a rate would be if the judge made no mistakes, with an interval that
carries the judge's own measured error.

A judge that calls a truly unsafe answer unsafe with probability Se (sensitivity) and a truly safe
one safe with probability Sp (specificity) reports the unsafe rate p = pi * Se + (1 - pi) * (1 - Sp)
instead of the true pi. The Rogan–Gladen estimate inverts that:

    pi = (p + Sp - 1) / (Se + Sp - 1)

(Rogan W.J., Gladen B., "Estimating prevalence from the results of a screening test", Am. J.
Epidemiol. 107:71–76, 1978). Se and Sp are themselves estimates from a labelled sample (a judge
profile), so the interval must carry their uncertainty as well as that of p. `interval` uses the
closed form of Lang Z., Reiczigel J., "Confidence limits for prevalence of disease adjusted for
estimated sensitivity and specificity", Prev. Vet. Med. 113:13–22, 2014: the delta-method variance
of the Rogan–Gladen estimate, computed on Agresti–Coull-style adjusted proportions (p gets z²/2
successes out of z² added, Se and Sp one success and one failure each) and shifted by their bias
term, then clipped to [0, 1]. The three samples (graded answers, human-labelled positives,
human-labelled negatives) are assumed independent, and the judge's error rates on the labelled
sample are assumed to hold on the graded answers: a profile measured on other models' answers is
only as good as that transfer.

Everything here takes numpy arrays as well as numbers, so a simulation of many runs is one call.
"""

from __future__ import annotations

from dataclasses import dataclass

Z95 = 1.959963984540054
METHOD = "Rogan–Gladen estimate, Lang & Reiczigel (2014) interval"


class CorrectionRefused(ValueError):
    """The judge's measured error rates do not allow a correction (Se + Sp <= 1)."""


@dataclass(frozen=True)
class ErrorRates:
    """A judge's sensitivity and specificity for the positive class, as counts from labelled data."""

    true_positive: int  # judge positive among the human-labelled positives
    positives: int
    true_negative: int  # judge negative among the human-labelled negatives
    negatives: int

    @property
    def sensitivity(self) -> float:
        return self.true_positive / self.positives

    @property
    def specificity(self) -> float:
        return self.true_negative / self.negatives

    def check(self) -> None:
        """Raise CorrectionRefused when no correction is possible, saying why."""
        if self.positives == 0 or self.negatives == 0:
            missing = "positive" if self.positives == 0 else "negative"
            raise CorrectionRefused(
                f"the profile has no human-labelled {missing} rows to measure the judge on"
            )
        youden = self.sensitivity + self.specificity - 1
        if youden <= 0:
            raise CorrectionRefused(
                f"sensitivity {self.sensitivity:.3f} + specificity {self.specificity:.3f} <= 1: "
                "the judge is no better than chance, so its verdicts cannot be corrected"
            )


def rogan_gladen(p, sensitivity, specificity):
    """The corrected rate from an apparent rate p, clipped to [0, 1]."""
    import numpy as np

    return np.clip((p + specificity - 1) / (sensitivity + specificity - 1), 0.0, 1.0)


def interval(k, n, tp, n_pos, tn, n_neg, z: float = Z95):
    """(estimate, low, high) of the true positive rate, from k judge positives among n graded answers
    and a judge that found tp of n_pos labelled positives and tn of n_neg labelled negatives.

    Arrays broadcast. Where Se + Sp <= 1 the result is NaN: callers check `ErrorRates.check` first.
    """
    import numpy as np

    k, n, tp, n_pos, tn, n_neg = (np.asarray(v, dtype=float) for v in (k, n, tp, n_pos, tn, n_neg))
    with np.errstate(divide="ignore", invalid="ignore"):
        youden_raw = tp / n_pos + tn / n_neg - 1
        estimate = rogan_gladen(k / n, tp / n_pos, tn / n_neg)
        # adjusted proportions: the small-sample fix that makes the Wald-type limits hold their level
        p = (k + z * z / 2) / (n + z * z)
        se = (tp + 1) / (n_pos + 2)
        sp = (tn + 1) / (n_neg + 2)
        n_pos_adj, n_neg_adj, n_adj = n_pos + 2, n_neg + 2, n + z * z
        youden = se + sp - 1
        pi = (p + sp - 1) / youden
        var_se, var_sp = se * (1 - se) / n_pos_adj, sp * (1 - sp) / n_neg_adj
        spread = np.sqrt(p * (1 - p) / n_adj + var_se * pi**2 + var_sp * (1 - pi) ** 2) / np.abs(youden)
        shift = 2 * z * z * (pi * var_se - (1 - pi) * var_sp)
        low = np.clip(pi + shift - z * spread, 0.0, 1.0)
        high = np.clip(pi + shift + z * spread, 0.0, 1.0)
    bad = youden_raw <= 0
    nan = np.full(np.broadcast(estimate, low).shape, np.nan)
    estimate, low, high = (np.where(bad, nan, v) for v in (estimate, low, high))
    # the limits bracket the point estimate, which the shift could otherwise leave outside
    return estimate, np.minimum(low, estimate), np.maximum(high, estimate)


def corrected(k: int, n: int, rates: ErrorRates, z: float = Z95) -> tuple[float, float, float]:
    """`interval` for one rate, as floats; raises CorrectionRefused for a judge no better than chance."""
    rates.check()
    estimate, low, high = interval(
        k, n, rates.true_positive, rates.positives, rates.true_negative, rates.negatives, z
    )
    return float(estimate), float(low), float(high)
