"""Theorem 4: a capability switches on once the signal-to-noise ratio of the representation
passes a capability-specific threshold theta_C.  The chapter trains small students on three
tasks with exact success metrics (copy, recall, modular addition), several seeds per size, reads
every capability and the SNR at checkpoints along training, adds noise of known size where the
SNR is read at each run's final weights, and decides five kinds of claims:
``abrupt_<task>`` (each run's success is an abrupt logistic in ln SNR), ``shared_<task>``
(the runs switch at one threshold), ``collapse`` (one curve in SNR
predicts held-out runs better than one in D, D x P or the loss), ``metric`` (the multi-token
copy switch survives a continuous metric) and ``mechanism_<task>`` (at fixed weights, noise
switches the task off at the SNR where training switched it on: success depends on the SNR
alone).  The shared-threshold and mechanism rules also read the whitened SNR of the same
representation (``shared_whitened_<task>``, ``mechanism_whitened_<task>``: readings), which no
invertible linear map of the stream changes.  Every interval is over training runs.

- ``study.py``: :func:`study`, :func:`analyse` (the verdicts from a capability table),
  :class:`Theorem4Result`, and the measurement of every run at its checkpoints
  and the noise sweep at its final weights (:func:`measure_run`, :func:`noise_sweep`,
  :func:`capability_table`);
- ``estimators.py``: held-out deviance leaving one run out, each rule's evidence, pooled and
  per-seed thresholds, the collapse table, crossing resources, the known-threshold check;
- ``rules.py``: :func:`decide_abrupt`, :func:`decide_shared`, :func:`decide_collapse`,
  :func:`decide_metric`,
  :func:`decide_mechanism`, their
  bounds, ``CLAIMS`` and ``TO_DECIDE``;
- ``worlds.py``: simulated runs for the rules' false-verdict rates (:func:`worlds`);
- ``text.py``: the numbers the prose glues and the reasons a threshold is missing.
"""

from __future__ import annotations

from .estimators import (CollapseEvidence, MechanismEvidence, MetricEvidence, SwitchEvidence,
                         collapse_evidence, collapse_table, crossing_resources, heldout_deviance,
                         known_threshold_demo, mechanism_evidence, metric_evidence,
                         seed_thresholds, switch_evidence, threshold_table)
from .rules import (ABRUPT_WIDTH, CANDIDATES, CLAIMS, LEARNED_LEVEL, MARGIN_CONTROL,
                    MECHANISM_MARGIN, SHARED_SPREAD, TO_DECIDE, decide_abrupt, decide_collapse,
                    decide_induction, decide_mechanism, decide_metric, decide_shared)
from .study import (NOISE_MULTIPLES, SNR_SITES, Theorem4Result, analyse, capability_table,
                    measure_run, noise_sweep, study)
from .worlds import (WORLDS_VERSION, simulate_collapse, simulate_mechanism, simulate_metric,
                     simulate_switch, world_runs, worlds)

NOTEBOOK = "theorem4_emergence"
SHORT = "Thm 4"
TITLE = "4. Capabilities switch on at an SNR threshold"

__all__ = [
    # the registry's names and the study
    "NOTEBOOK", "SHORT", "TITLE", "study", "analyse", "Theorem4Result", "worlds", "WORLDS_VERSION",
    # the rules
    "decide_abrupt", "decide_shared", "decide_collapse", "decide_induction", "decide_metric",
    "decide_mechanism", "CLAIMS", "TO_DECIDE", "ABRUPT_WIDTH", "CANDIDATES", "LEARNED_LEVEL",
    "MARGIN_CONTROL", "MECHANISM_MARGIN", "SHARED_SPREAD",
    # measuring the runs, and the estimators
    "SNR_SITES", "NOISE_MULTIPLES", "capability_table", "measure_run", "noise_sweep",
    "CollapseEvidence", "MechanismEvidence", "MetricEvidence", "SwitchEvidence",
    "collapse_evidence", "collapse_table", "crossing_resources", "heldout_deviance",
    "known_threshold_demo", "mechanism_evidence", "metric_evidence",
    "seed_thresholds", "switch_evidence", "threshold_table",
    # the simulated worlds
    "simulate_collapse", "simulate_mechanism", "simulate_metric", "simulate_switch",
    "world_runs",
]
