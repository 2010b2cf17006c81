"""Theorem 4: a capability switches on once the signal-to-noise ratio of the representation
passes a capability-specific threshold theta_C.  The chapter trains small students on three
tasks with exact success metrics (copy, recall, modular addition), several seeds per size, reads
every capability and the SNR at checkpoints along training, and decides three kinds of claims:
``threshold_<task>`` (success is an abrupt logistic in ln SNR), ``collapse`` (one curve in SNR
predicts held-out runs better than one in D, D x P or the loss) and ``metric`` (the multi-token
copy switch survives a continuous metric).  Every interval is over training runs.

- ``study.py``: :func:`study`, :func:`analyse` (the verdicts from a capability table),
  :class:`Theorem4Result`, and the measurement of every run at its checkpoints
  (:func:`measure_run`, :func:`capability_table`);
- ``estimators.py``: held-out deviance leaving one run out, each rule's evidence, pooled and
  per-seed thresholds, the collapse table, crossing resources, the known-threshold check;
- ``rules.py``: :func:`decide_threshold`, :func:`decide_collapse`, :func:`decide_metric`, their
  bounds, ``CLAIMS`` and ``TO_DECIDE``;
- ``worlds.py``: simulated runs for the rules' false-verdict rates (:func:`worlds`);
- ``text.py``: the numbers the prose glues and the reasons a threshold is missing.
"""

from __future__ import annotations

from .estimators import (CollapseEvidence, MetricEvidence, ThresholdEvidence, collapse_evidence,
                         collapse_table, crossing_resources, heldout_deviance,
                         known_threshold_demo, metric_evidence, seed_thresholds,
                         threshold_evidence, threshold_table)
from .rules import (ABRUPT_WIDTH, CANDIDATES, CLAIMS, LEARNED_LEVEL, MARGIN_CONTROL, TO_DECIDE,
                    decide_collapse, decide_metric, decide_threshold)
from .study import SNR_SITES, Theorem4Result, analyse, capability_table, measure_run, study
from .worlds import (WORLDS_VERSION, simulate_collapse, simulate_metric, simulate_threshold,
                     world_runs, worlds)

NOTEBOOK = "theorem4_emergence"
SHORT = "Thm 4"
TITLE = "4. Capabilities switch on at an SNR threshold"

__all__ = [
    # the registry's names and the study
    "NOTEBOOK", "SHORT", "TITLE", "study", "analyse", "Theorem4Result", "worlds", "WORLDS_VERSION",
    # the rules
    "decide_threshold", "decide_collapse", "decide_metric", "CLAIMS", "TO_DECIDE", "ABRUPT_WIDTH",
    "CANDIDATES", "LEARNED_LEVEL", "MARGIN_CONTROL",
    # measuring the runs, and the estimators
    "SNR_SITES", "capability_table", "measure_run", "CollapseEvidence", "MetricEvidence",
    "ThresholdEvidence", "collapse_evidence", "collapse_table", "crossing_resources",
    "heldout_deviance", "known_threshold_demo", "metric_evidence", "seed_thresholds",
    "threshold_evidence", "threshold_table",
    # the simulated worlds
    "simulate_collapse", "simulate_metric", "simulate_threshold", "world_runs",
]
