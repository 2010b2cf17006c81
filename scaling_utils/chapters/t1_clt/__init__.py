"""Theorem 1 (a CLT for hidden representations): the variance of a representation around its
mean falls as 1/n in the context length n, and its fluctuation becomes Gaussian.  The headline
reads the attention output of one fixed final token appended to random windows of real text:
the median over layers of the fitted variance exponents, with a jackknife interval over window
groups, judged against -1 within a margin; the i.i.d. attention control, the random twin on
i.i.d. tokens, the last token of random windows and the residual stream are secondary evidence.
The limit law is read by normality tests along random directions, decided only where the tests
have power; a 2 x 3 design (trained and random model x real, shuffled and i.i.d. text, first
token as drawn or fixed) says whether the text or the model sets the rate.

- ``study.py``: :func:`study` (the captures, cached) and :class:`Theorem1Result`;
- ``estimators.py``: variance exponents and their intervals (over a range of n, and locally
  between neighbouring n), effective context, Gaussianity
  tests, the loss against position, the precision check, the students' fits;
- ``rules.py``: the claimed exponent, its margin, the minimum sample and the ``decide_*`` rules;
- ``worlds.py``: simulated windows with a known exponent, and the rules' false-verdict rates;
  worlds of k causal averages, where the CLT holds in the limit and depth bends it at finite n;
- ``text.py``: the numbers and phrases the prose glues.
"""

from .estimators import (DESIGN_MODELS, DESIGN_TEXTS, FIRST_TOKENS, FIXED, IID_CONTROL,
                         LAST_TOKEN, SUMMARY_COLUMNS, TWIN, WINDOW_SUBSETS, ExponentFits,
                         PositionLoss, PrecisionCheck, VarianceScaling, design_table,
                         effective_context_table, fit_exponents, gaussian_evidence, gaussianity,
                         ks_null_quantile, layer_n_eff, length_grid, local_exponents,
                         median_exponent, position_loss, precision_check, student_fits,
                         summarise_fits, tested_sites, variance_scaling, window_subsets)
from .rules import (CLAIM_MARGIN, CLAIMED_EXPONENT, CLAIMS, DECIDE, MIN_LENGTHS, MIN_WINDOWS,
                    READINGS, TO_DECIDE, decide_control, decide_gaussian, decide_last_token,
                    decide_rate, decide_residual, decide_twin, gaussian_power, reading)
from .study import CLT_VERSION, Theorem1Result, study
from .worlds import (WORLDS_VERSION, causal_average_exponents, rule_error_rates,
                     simulated_group_variances, worlds)

NOTEBOOK = "theorem1_clt"
SHORT = "Thm 1"
TITLE = "1. Noise in hidden states falls as 1/n (CLT)"

__all__ = [
    "CLAIMED_EXPONENT", "CLAIMS", "CLAIM_MARGIN", "CLT_VERSION", "DECIDE", "DESIGN_MODELS",
    "DESIGN_TEXTS", "ExponentFits", "FIRST_TOKENS", "FIXED", "IID_CONTROL", "LAST_TOKEN",
    "MIN_LENGTHS", "MIN_WINDOWS", "NOTEBOOK", "PositionLoss", "PrecisionCheck", "READINGS",
    "SHORT", "SUMMARY_COLUMNS", "TITLE", "TO_DECIDE", "TWIN", "Theorem1Result",
    "VarianceScaling", "WINDOW_SUBSETS", "WORLDS_VERSION", "causal_average_exponents",
    "decide_control", "decide_gaussian", "decide_last_token", "decide_rate", "decide_residual",
    "decide_twin", "design_table", "effective_context_table", "fit_exponents",
    "gaussian_evidence", "gaussian_power", "gaussianity", "ks_null_quantile", "layer_n_eff",
    "length_grid", "local_exponents", "median_exponent", "position_loss", "precision_check",
    "reading", "rule_error_rates", "simulated_group_variances", "student_fits", "study",
    "summarise_fits", "tested_sites", "variance_scaling", "window_subsets", "worlds",
]
