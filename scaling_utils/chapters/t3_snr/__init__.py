"""Theorem 3: the signal-to-noise ratio of representations grows in proportion to the training
tokens D, and with the model size P; read through the CLT of Theorem 1, it would also grow in
proportion to the context length n.  The chapter measures the SNR of every run of the Theorem 2
student grid (against the language's hidden state) and of a pretrained model against context
length (against the next token), fits the exponents and decides its verdicts: the exponent in D
read against each of the paper's three readings (1, 2 and 3), in P, and in n; and the same
exponents in D and P on a second scale, the whitened SNR against the hidden state that emitted
each token, beside its ceiling (the exact belief state's).

- ``study.py``: :func:`study` and :class:`Theorem3Result`;
- ``estimators.py``: each run's SNR and whitened SNR, the belief-state ceiling, the exponents
  with intervals over runs then sequences, SNR against context, the estimator check on
  mixtures with a known SNR;
- ``rules.py``: :func:`decide_data` (at each of ``D_READINGS``), :func:`decide_size`,
  :func:`decide_context`, their bounds and ``CLAIMS``;
- ``worlds.py``: simulated grids and context bins for the rules' false-verdict rates;
- ``text.py``: the numbers the prose glues.
"""

from __future__ import annotations

from .estimators import (at_positions, belief_ceiling, context_snr_table, estimator_check,
                         grid_exponents, per_seed_exponents, snr_exponent, snr_grid_table,
                         student_snr, token_reference, whitened_student_snr, within_slope)
from .rules import CLAIMS, D_READINGS, TO_DECIDE, decide_context, decide_data, decide_size
from .study import Theorem3Result, snr_sequences, study
from .worlds import WORLDS_VERSION, simulate_context, simulate_grid, worlds

NOTEBOOK = "theorem3_snr"
SHORT = "Thm 3"
TITLE = "3. SNR grows in proportion to data D"

__all__ = ["CLAIMS", "D_READINGS", "NOTEBOOK", "SHORT", "TITLE", "TO_DECIDE", "Theorem3Result",
           "WORLDS_VERSION", "at_positions", "belief_ceiling", "context_snr_table",
           "decide_context", "decide_data", "decide_size", "estimator_check", "grid_exponents",
           "per_seed_exponents", "simulate_context", "simulate_grid", "snr_exponent",
           "snr_grid_table", "snr_sequences", "student_snr", "study", "token_reference",
           "whitened_student_snr", "within_slope", "worlds"]
