"""Published scaling laws the book sets beside its own: the refits of Hoffmann et al. (2022) and
Besiroglu et al. (2024), Kaplan et al.'s (2020) exponents, and a reader for Epoch AI's
digitised Chinchilla points (not shipped; refitted with :func:`~.estimators.chinchilla.fit_chinchilla`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .estimators.chinchilla import ScalingDataError, check_points

# Besiroglu et al. (2024) fit 240 of the 245 digitised points: the five with the highest loss
# are dropped (small models trained on few tokens, far from the fitted regime).
EPOCH_DROPPED = 5


def load_epoch_chinchilla(path: str | Path, keep_all: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read published points in the column format of Epoch AI's digitised Chinchilla data
    (``Model Size``, ``Training FLOP``, ``loss``) and return N, D = FLOP / (6 N), L.  As in
    Besiroglu et al. (2024), the :data:`EPOCH_DROPPED` highest-loss points are left out unless
    ``keep_all``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScalingDataError(f"{path} does not exist; pass the path of the CSV you downloaded.")
    try:
        table = pd.read_csv(path)
    except Exception as err:  # empty file, binary, bad quoting
        raise ScalingDataError(f"{path} is not a readable CSV file ({err}).") from err
    needed = ["Model Size", "Training FLOP", "loss"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ScalingDataError(f"{path} lacks the column(s) {missing}; expected {needed} "
                               f"(found {list(table.columns)}).")
    table = table[needed].apply(pd.to_numeric, errors="coerce").dropna()
    if table.empty:
        raise ScalingDataError(f"{path} has no numeric rows in {needed}.")
    if not keep_all:
        table = table.drop(table["loss"].nlargest(EPOCH_DROPPED).index)
    N = table["Model Size"].to_numpy(float)
    return check_points(N, table["Training FLOP"].to_numpy(float) / (6 * N), table["loss"].to_numpy(float))


# the published refits the book sets beside ours (point estimates as printed in the papers)
# Kaplan et al. (2020), eqs. (1.1)-(1.3): L(N) ~ N^-alpha_N, L(D) ~ D^-alpha_D,
# L(C_min) ~ C_min^-alpha_C (each with the other resources unconstrained).
KAPLAN_EXPONENTS = dict(alpha_N=0.076, alpha_D=0.095, alpha_C=0.050)

PUBLISHED = {
    "Hoffmann et al. 2022": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    "Besiroglu et al. 2024": dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658),
}

# The largest training run whose compute its developer published: Llama 3.1 405B, "pre-trained
# using 3.8 x 10^25 FLOPs" on 15.6T tokens (Grattafiori et al. 2024, Section 1 and 3.3).
LARGEST_RUN = dict(name="Llama 3.1 405B", flop=3.8e25, tokens=15.6e12, parameters=405e9)
# The effective stock of public human-generated text, quality- and repetition-adjusted:
# about 300 trillion tokens, 90 % interval 100T to 1000T (Villalobos et al. 2024).
TEXT_STOCK = dict(tokens=3e14, ci_low=1e14, ci_high=1e15)
