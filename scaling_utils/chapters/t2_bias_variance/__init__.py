"""Theorem 2: the loss of trained students split into the source's entropy, a capacity term B(P)
and a finite-data term V(P, D), measured rather than assumed.

With eps known exactly, B(P) = L(P, D_max) - eps is measured at the largest data size: an upper
bound on the infinite-data bias.  ``converged`` says whether the last doubling of D moved the loss
by less than the seed noise (more data buys less than a seed's luck), ``still_falling`` whether
that step exceeds twice its standard error, and
V(P, D) = L(P, D) - eps - B(P).  The decomposition itself is an identity once B and V are defined
as differences; what can fail are the forms fitted to it, read by three rules: the capacity
exponent alpha > 0, the coupling gamma = 0, and a free fit's E = eps.  Their intervals come from
a hierarchical bootstrap: the runs of every (P, D) cell are resampled, then the held-out
sequences that every run was evaluated on.

The rooms:

- ``study.py``: :func:`study` and :class:`Theorem2Result`;
- ``estimators.py``: the decomposition, per-sequence losses, the bootstrap, the law fits, the
  profile in E and the per-seed table;
- ``rules.py``: :func:`decide_capacity`, :func:`decide_coupling`, :func:`decide_entropy`, their
  bounds and margins, :data:`CLAIMS`;
- ``worlds.py``: simulated grids with a known law (:func:`worlds`, :func:`simulate_losses`);
- ``text.py``: the numbers and phrases the prose glues.
"""

from .estimators import (Estimate, LossData, LossReplicates, bootstrap_losses, capacity_estimate,
                         cell_intervals, coupling_estimate, decompose, entropy_estimate,
                         entropy_held_out, fit_table, fit_with_floor_profile, gain_per_doubling,
                         held_out_difference, law_fits, per_seed_estimates, seed_noise,
                         sequence_losses)
from .rules import (CLAIMS, COUPLING_MARGIN, ENTROPY_MARGIN, TO_DECIDE, decide_capacity,
                    decide_coupling, decide_entropy)
from .study import Theorem2Result, study
from .worlds import (WORLD_LAW, WORLDS_VERSION, grid_world, misspecified_worlds, noise_sizes,
                     simulate_losses, worlds)

NOTEBOOK = "theorem2_bias_variance"
SHORT = "Thm 2"
TITLE = "2. Loss = entropy + capacity bias + data variance"

__all__ = [
    "NOTEBOOK", "SHORT", "TITLE", "study", "Theorem2Result", "worlds", "WORLDS_VERSION",
    "decide_capacity", "decide_coupling", "decide_entropy", "CLAIMS", "TO_DECIDE",
    "COUPLING_MARGIN", "ENTROPY_MARGIN", "Estimate", "LossData", "LossReplicates",
    "bootstrap_losses", "capacity_estimate", "cell_intervals", "coupling_estimate", "decompose",
    "entropy_estimate", "entropy_held_out", "fit_table", "fit_with_floor_profile",
    "gain_per_doubling", "held_out_difference", "law_fits", "per_seed_estimates", "seed_noise",
    "sequence_losses", "WORLD_LAW", "grid_world", "misspecified_worlds", "noise_sizes", "simulate_losses",
]
