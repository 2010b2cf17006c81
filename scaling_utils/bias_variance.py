"""Theorem 2 analysis: the loss of trained students split into the source's entropy, a capacity
term B(P) and a finite-data term V(P, D), measured rather than assumed.

With eps known exactly, B(P) = L(P, D_max) - eps is measured at the largest data size: an upper
bound on the infinite-data bias.  ``converged`` says whether the last step in D moved the loss by
less than twice its standard error (a weak check: it fails to reject, it does not prove), and
V(P, D) = L(P, D) - eps - B(P).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .train import TrainResult


def results_table(results: Sequence[TrainResult], eps: float) -> pd.DataFrame:
    """One row per run: P (non-embedding parameters), D, seed, data mode, final loss, L - eps."""
    rows = [dict(P=r.n_parameters, D=r.config.tokens, seed=r.config.seed,
                 data_mode=r.config.data_mode, dataset_tokens=r.config.dataset_tokens,
                 width=r.config.spec.d_model, layers=r.config.spec.n_layers,
                 loss=r.final_loss, seconds=r.seconds) for r in results]
    table = pd.DataFrame(rows)
    table["excess"] = table.loss - eps
    return table


def decompose(table: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Per (P, D) over seeds of fresh-data runs: mean loss, seed SD, B(P), V(P, D), and whether
    the largest-D loss has converged (the last step in D moved it by < 2 standard errors)."""
    fresh = table[table.data_mode == "fresh"]
    cells = fresh.groupby(["P", "D"]).loss.agg(["mean", "std", "count"]).reset_index()
    cells["se"] = cells["std"] / np.sqrt(cells["count"])
    out = []
    for P, group in cells.groupby("P"):
        group = group.sort_values("D")
        last = group.iloc[-1]
        bias = last["mean"] - eps
        if len(group) > 1:
            before = group.iloc[-2]
            step = before["mean"] - last["mean"]
            noise = np.sqrt(np.nan_to_num(last["se"]) ** 2 + np.nan_to_num(before["se"]) ** 2)
        else:  # one data size: nothing shows convergence
            step, noise = np.nan, 0.0
        for _, cell in group.iterrows():
            out.append(dict(P=P, D=cell.D, loss=cell["mean"], seed_sd=cell["std"],
                            seeds=int(cell["count"]), bias=bias,
                            variance_term=cell["mean"] - eps - bias,
                            converged=bool(step < 2 * noise) if noise > 0 else False))
    return pd.DataFrame(out)


def gain_per_doubling(cells: pd.DataFrame, along: str) -> pd.DataFrame:
    """Loss gained per doubling of ``along`` ("P" or "D"), between neighbouring grid points:
    (L_lower - L_upper) / log2(upper / lower).  Diminishing returns = gains that shrink."""
    other = "D" if along == "P" else "P"
    rows = []
    for key, group in cells.groupby(other):
        group = group.sort_values(along)
        x, y = group[along].to_numpy(float), group["loss"].to_numpy()
        for i in range(len(x) - 1):
            rows.append({other: key, f"{along}_from": x[i], f"{along}_to": x[i + 1],
                         "gain_per_doubling": (y[i] - y[i + 1]) / np.log2(x[i + 1] / x[i])})
    return pd.DataFrame(rows)
