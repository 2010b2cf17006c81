"""What Theorem 2 measures: the decomposition of the grid's losses, the per-sequence losses and
their hierarchical bootstrap, the three law fits the rules read, and the tables built from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ...cache import array_digest, cached
from ...estimators.chinchilla import (E_FLOOR, fit_chinchilla, fit_chinchilla_batch, held_out_rmse,
                                      held_out_rmse_batch)
from ...estimators.intervals import (hierarchical_bootstrap, row_df, runs_per_cell,
                                     sequence_weights, stretched_interval)
from ...train import TrainResult, weights_digest

BIAS_VARIANCE_VERSION = 1  # bump when a change here changes the per-sequence losses
FOLDS = 5  # cross-validation folds of whole (P, D) cells
# The unigram frequencies are counted on a sample of their own, drawn with the profile seed + 1:
# neither the sample the entropy rate is estimated from (seed) nor the held-out set
# (seed + train.EVAL_SEED_OFFSET).
UNIGRAM_SEED_OFFSET = 1
UNIGRAM_SEQUENCES = 1000  # windows of the sample the unigram frequencies are counted on
# The rows of the language table, in order (the result reads eps and the unigram entropy there).
LANGUAGE_ROWS = ("exact loss given the window (eps)", "entropy rate (infinite past)",
                 "unigram entropy")
# The per-seed table's row of the held-out comparison of the coupled and additive laws.
CV_ROW = "held-out RMSE difference, coupled - additive"
SCHEDULE_CHECK_COLUMNS = ("D", "wsd", "cosine", "difference", "difference_sd", "seed_sd", "seeds")


# --------------------------------------------------------------------------- tables

def results_table(results: Sequence[TrainResult], eps: float) -> pd.DataFrame:
    """One row per run: P (non-embedding parameters), D, seed, data mode, final loss, L - eps."""
    rows = [dict(P=r.n_parameters, D=r.config.D, seed=r.config.seed,
                 data_mode=r.config.data_mode, dataset_tokens=r.config.dataset_tokens,
                 width=r.config.spec.d_model, layers=r.config.spec.n_layers,
                 loss=r.final_loss, seconds=r.seconds) for r in results]
    table = pd.DataFrame(rows)
    table["excess"] = table.loss - eps
    return table


def decompose(table: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Per (P, D) over seeds of fresh-data runs: mean loss, seed SD, B(P), V(P, D), and the
    size's regime at the largest D.  ``converged``: the last step in D, per doubling of D
    (``last_step``), moved the loss by less than the seed noise (``step_noise``: the root mean
    of the two cells' seed variances), so that more data buys less than the luck of a seed;
    ``still_falling``: that step exceeds twice its standard error (``last_step_se``), so that
    the loss detectably still falls (a size can be both)."""
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
            doublings = np.log2(last.D / before.D)
            step = (before["mean"] - last["mean"]) / doublings
            se = np.sqrt(np.nan_to_num(last["se"]) ** 2
                         + np.nan_to_num(before["se"]) ** 2) / doublings
            seed_noise = np.sqrt(np.nanmean([last["std"] ** 2, before["std"] ** 2]))
        else:  # one data size: nothing shows convergence
            step, se, seed_noise = np.nan, 0.0, np.nan
        for _, cell in group.iterrows():
            out.append(dict(P=P, D=cell.D, loss=cell["mean"], seed_sd=cell["std"],
                            n_seeds=int(cell["count"]), bias=bias,
                            variance_term=cell["mean"] - eps - bias,
                            converged=bool(abs(step) < seed_noise) if seed_noise > 0 else False,
                            still_falling=bool(step > 2 * se) if se > 0 else False,
                            last_step=step, last_step_se=se, step_noise=seed_noise))
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


def schedule_check(wsd: Sequence[TrainResult], cosine: Sequence[TrainResult]) -> pd.DataFrame:
    """The same runs under the two schedules, per D: the mean final loss of each over seeds and
    their paired difference (wsd - cosine) with the SD of the per-seed differences, so that a
    gap can be read against the spread between seeds of one schedule (``seed_sd``)."""
    if not wsd or not cosine:
        return pd.DataFrame(columns=SCHEDULE_CHECK_COLUMNS)

    def table(runs):
        return pd.DataFrame([dict(D=r.config.D, seed=r.config.seed, loss=r.final_loss)
                             for r in runs]).set_index(["D", "seed"]).loss

    a, b = table(wsd), table(cosine)
    paired = pd.DataFrame({"wsd": a, "cosine": b}).dropna()
    paired["difference"] = paired.wsd - paired.cosine
    grouped = paired.groupby(level="D")
    out = pd.DataFrame({"wsd": grouped.wsd.mean(), "cosine": grouped.cosine.mean(),
                        "difference": grouped.difference.mean(),
                        "difference_sd": grouped.difference.std(ddof=1),
                        "seed_sd": grouped.cosine.std(ddof=1), "seeds": grouped.size()})
    return out.reset_index()[list(SCHEDULE_CHECK_COLUMNS)]


def language_table(grid, context: int, seed: int) -> pd.DataFrame:
    """The language's reference losses (nats, with standard errors): the exact loss given a
    window (eps, on the held-out set), the entropy rate given the infinite past, and the entropy
    of the token frequencies (:data:`LANGUAGE_ROWS`).  ``grid``: :func:`~...train.known_language`."""
    rate = grid.source.entropy_rate(seed=seed)
    sample = grid.source.sample(UNIGRAM_SEQUENCES, context, seed=seed + UNIGRAM_SEED_OFFSET)
    freq = np.bincount(sample.ravel(), minlength=grid.source.n_symbols) / sample.size
    unigram = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    return pd.DataFrame({"quantity": list(LANGUAGE_ROWS),
                         "nats": [grid.eps, rate.value, unigram],
                         "se": [grid.eps_se, rate.stderr, np.nan]})


# --------------------------------------------------------------------------- per-sequence losses

def sequence_losses(model, tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean next-token loss (nats) of ``model`` on each sequence of ``tokens`` (positions
    1..T-1, as :func:`~...train.evaluate`, whose value is the mean of these)."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(tokens), batch_size):
            ids = torch.as_tensor(tokens[start:start + batch_size], device=device)
            logits = model(input_ids=ids).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                                                    reduction="none")
            out.append(nll.mean(1).double().cpu().numpy())
    return np.concatenate(out)


@dataclass(frozen=True)
class LossData:
    """What the estimators see: the fresh-data runs' (P, D, seed) and their losses on every
    held-out sequence (runs x sequences), with the source's exact loss on the same sequences."""

    P: np.ndarray
    D: np.ndarray
    seed: np.ndarray
    losses: np.ndarray
    exact: np.ndarray

    @property
    def cell(self) -> np.ndarray:
        return np.unique(np.c_[self.P, self.D], axis=0, return_inverse=True)[1].ravel()

    @property
    def loss(self) -> np.ndarray:
        return self.losses.mean(1)

    @property
    def eps(self) -> float:
        return float(self.exact.mean())

    def subset(self, keep: np.ndarray) -> "LossData":
        return LossData(self.P[keep], self.D[keep], self.seed[keep], self.losses[keep], self.exact)


def loss_data(results: Sequence[TrainResult], source, eval_tokens: np.ndarray,
              device=None) -> LossData:
    """Per-sequence held-out losses of every fresh-data run (cached by the run's weights and the
    sequences), with the source's exact per-sequence loss."""
    from ...train import load_student

    fresh = [r for r in results if r.config.data_mode == "fresh"]
    tokens = np.asarray(eval_tokens)
    rows = [cached("sequence_losses", {"train": asdict(r.config), "weights": weights_digest(r),
                                       "tokens": array_digest(tokens),
                                       "version": BIAS_VARIANCE_VERSION},
                   lambda r=r: sequence_losses(load_student(r, device), tokens)) for r in fresh]
    exact = source.nll(tokens)[:, 1:].mean(1)
    return LossData(np.array([r.n_parameters for r in fresh], float),
                    np.array([r.config.D for r in fresh], float),
                    np.array([r.config.seed for r in fresh]), np.stack(rows), exact)


def seed_noise(data: LossData) -> float:
    """The spread of one run's log L between the seeds of a cell: the root of the mean
    within-cell variance (NaN with one run per cell)."""
    variance = pd.Series(np.log(data.loss)).groupby(data.cell).var()
    return float(np.sqrt(variance.mean())) if variance.notna().any() else np.nan


# --------------------------------------------------------------------------- the bootstrap

@dataclass(frozen=True)
class LossReplicates:
    """Hierarchical bootstrap replicates: every run's loss (replicates x runs) and the exact loss
    eps on the same resample of sequences (replicates)."""

    losses: np.ndarray
    eps: np.ndarray
    runs_resampled: bool  # False when a cell has one run: the spread between runs is missing
    df: int = 0  # degrees of freedom of the spread between runs (0: sequences only)


def bootstrap_losses(data: LossData, n_boot: int, seed: int = 0,
                     resample_runs: bool = True) -> LossReplicates:
    """Training seeds resampled within each size, each drawn seed bringing its runs at every D
    (the runs of one size and seed share a WSD trunk and move together: resampling them one
    by one within cells leaves that out, and the entropy rule then contradicts falsely in a
    world with such runs), then held-out sequences: one resample of the sequences per
    replicate, shared by every run and by eps, because they were all measured on the same
    sequences (a run's loss and eps keep their pairing).  ``resample_runs=False``
    resamples the sequences only (what an interval without the spread between runs would be;
    the tests show that it under-covers)."""
    weights = sequence_weights(data.losses.shape[1], n_boot, seed=[seed, 2])
    by_sequence = data.losses @ weights.T  # runs x replicates
    if not resample_runs:
        return LossReplicates(by_sequence.T, weights @ data.exact, False)
    row = np.unique(np.c_[data.P, data.seed], axis=0, return_inverse=True)[1].ravel()
    losses = hierarchical_bootstrap(data.loss, data.cell, n_boot, seed=[seed, 1],
                                    replicates=by_sequence, row=row)
    return LossReplicates(losses, weights @ data.exact, runs_per_cell(data.cell) >= 2,
                          row_df(data.cell, row))


@dataclass(frozen=True)
class Estimate:
    """One quantity a rule reads: its value on the data and a 95 % interval of its hierarchical
    bootstrap replicates (:func:`~...estimators.intervals.stretched_interval`)."""

    name: str
    effect: float
    ci_low: float
    ci_high: float
    runs_resampled: bool = True
    at_bound: bool = False  # the fit to the data ended at a bound of its parameter
    bound_share: float = 0.0  # share of replicates that ended there
    replicates: int | None = None  # bootstrap replicates behind the interval (None: not bootstrapped)


def _estimate(name: str, effect: float, replicates: np.ndarray, reps: LossReplicates,
              **bound) -> Estimate:
    lo, hi = stretched_interval(replicates, reps.df)
    return Estimate(name, float(effect), lo, hi, reps.runs_resampled, **bound,
                    replicates=int(np.isfinite(replicates).sum()))


# --------------------------------------------------------------------------- the law fits

def law_fits(data: LossData, reps: LossReplicates) -> dict:
    """The three fits the rules read, on the data and on every replicate: the additive law with
    eps held at the exact value ("fixed"), the coupled law with eps held ("coupled"), and the
    additive law with E free ("free").  Each replicate starts from the data's fit (E held at
    that replicate's exact loss)."""
    fits = {"fixed": fit_chinchilla(data.P, data.D, data.loss, E=data.eps),
            "coupled": fit_chinchilla(data.P, data.D, data.loss, E=data.eps, coupled=True),
            "free": fit_chinchilla(data.P, data.D, data.loss)}
    many = {name: fit_chinchilla_batch(data.P, data.D, reps.losses,
                                       E=None if name == "free" else reps.eps,
                                       coupled=name == "coupled", start=fit)
            for name, fit in fits.items()}
    return {"point": fits, "replicates": many}


def capacity_estimate(fits: dict, reps: LossReplicates) -> Estimate:
    """alpha of B(P) = A / P^alpha with eps held at the exact entropy."""
    return _estimate("alpha", fits["point"]["fixed"].alpha, fits["replicates"]["fixed"].alpha, reps)


def coupling_estimate(fits: dict, reps: LossReplicates) -> Estimate:
    """gamma of the data term B P^gamma / D^beta with eps held at the exact entropy."""
    return _estimate("gamma", fits["point"]["coupled"].gamma,
                     fits["replicates"]["coupled"].gamma, reps)


def entropy_estimate(fits: dict, data: LossData, reps: LossReplicates) -> Estimate:
    """E of the free fit minus the exact eps on the same sequences, with whether the fit (and
    which share of the replicates) ended at the lower bound of E."""
    free = fits["replicates"]["free"]
    return _estimate("E - eps", fits["point"]["free"].E - data.eps, free.E - reps.eps, reps,
                     at_bound=bool(fits["point"]["free"].E_at_bound),
                     bound_share=float(free.E_at_bound.mean()))


def _held_out_rmse(data: LossData, reps: LossReplicates, seed: int, coupled: bool = False,
                   free_E: bool = False):
    """Held-out RMSE of log L of one law in cross-validation over whole (P, D) cells, on the
    data and on every replicate (E held at eps unless ``free_E``)."""
    return held_out_rmse(data.P, data.D, data.loss, None if free_E else data.eps, coupled, FOLDS,
                         seed, replicates=reps.losses, E_replicates=None if free_E else reps.eps)


def held_out_difference(data: LossData, reps: LossReplicates, seed: int = 0) -> Estimate:
    """Held-out RMSE of log L of the coupled law minus that of the additive law (eps held), in
    cross-validation over whole (P, D) cells, on the data and on every replicate (negative:
    the coupled law predicts unseen cells better)."""
    coupled, additive = (_held_out_rmse(data, reps, seed, coupled=c) for c in (True, False))
    return _estimate("held-out RMSE difference", coupled[0] - additive[0],
                     coupled[1] - additive[1], reps)


def entropy_held_out(data: LossData, reps: LossReplicates, seed: int = 0) -> Estimate:
    """Held-out RMSE of log L of the additive law with E held at the exact eps minus that with
    E free (cross-validation over whole cells; positive: a floor other than eps predicts unseen
    cells better, so the data point away from eps)."""
    held, free = (_held_out_rmse(data, reps, seed, free_E=f) for f in (False, True))
    return _estimate("held-out RMSE, E = eps minus E free", held[0] - free[0], held[1] - free[1],
                     reps)


def entropy_held_out_many(data: Sequence[LossData], reps: Sequence[LossReplicates],
                          seed: int = 0) -> list[Estimate]:
    """:func:`entropy_held_out` for many simulated grids of one design at once (the worlds):
    every fold's fits batched over the grids and their replicates."""
    P, D = data[0].P, data[0].D
    L, eps = np.stack([d.loss for d in data]), np.array([d.eps for d in data])
    losses, eps_reps = np.stack([r.losses for r in reps]), np.stack([r.eps for r in reps])
    held = held_out_rmse_batch(P, D, L, eps, False, FOLDS, seed, losses, eps_reps)
    free = held_out_rmse_batch(P, D, L, None, False, FOLDS, seed, losses)
    return [_estimate("held-out RMSE, E = eps minus E free", held[0][i] - free[0][i],
                      held[1][i] - free[1][i], r) for i, r in enumerate(reps)]


def fit_with_floor_profile(data: LossData, n_points: int = 41) -> pd.DataFrame:
    """The profile of the additive law in E: for E on a grid from the lower bound to just below
    the smallest loss, the RMSE of log L of the best law with that floor.  A flat profile means
    the data do not identify E; a minimum far from eps means they point elsewhere."""
    E = np.linspace(E_FLOOR, 0.995 * data.loss.min(), n_points)
    fits = fit_chinchilla_batch(data.P, data.D, np.tile(data.loss, (n_points, 1)), E=E,
                                n_starts=16)
    residual = np.log(fits.predict(data.P, data.D)) - np.log(data.loss)
    return pd.DataFrame({"E": E, "rmse": np.sqrt(np.mean(residual ** 2, 1)),
                         "alpha": fits.alpha, "beta": fits.beta})


# --------------------------------------------------------------------------- tables of the fits

def fit_table(fits: dict, reps: LossReplicates) -> pd.DataFrame:
    """Long table of the three fits' parameters with their hierarchical-bootstrap intervals."""
    names = {"fixed": ("eps fixed", ("alpha", "beta", "A", "B")),
             "free": ("eps free", ("E", "alpha", "beta", "A", "B")),
             "coupled": ("coupled, eps fixed", ("alpha", "beta", "gamma", "A", "B"))}
    rows = []
    for key, (label, params) in names.items():
        point, many = fits["point"][key], fits["replicates"][key]
        for p in params:
            lo, hi = stretched_interval(getattr(many, p), reps.df)
            rows.append(dict(fit=label, parameter=p, estimate=getattr(point, p), ci_low=lo,
                             ci_high=hi))
    return pd.DataFrame(rows)


def cell_intervals(cells: pd.DataFrame, data: LossData, reps: LossReplicates) -> pd.DataFrame:
    """B(P) and V(P, D) with hierarchical-bootstrap intervals (columns ``bias_ci_low`` ...)."""
    cell_of = pd.MultiIndex.from_arrays([data.P, data.D])
    rep_means = pd.DataFrame(reps.losses.T, index=cell_of).groupby(level=[0, 1]).mean()
    out = cells.copy()
    for col in ("bias_ci_low", "bias_ci_high", "variance_ci_low", "variance_ci_high"):
        out[col] = np.nan
    for P, group in out.groupby("P"):
        top = rep_means.loc[(P, group.D.max())].to_numpy()
        bias = stretched_interval(top - reps.eps, reps.df)
        out.loc[group.index, ["bias_ci_low", "bias_ci_high"]] = bias
        for i, row in group.iterrows():
            v = rep_means.loc[(P, row.D)].to_numpy() - top
            out.loc[i, ["variance_ci_low", "variance_ci_high"]] = stretched_interval(v, reps.df)
    return out


def per_seed_estimates(data: LossData, estimates: dict, fit_rows: pd.DataFrame,
                       seed: int = 0) -> pd.DataFrame:
    """The headline numbers fitted to each training seed's runs alone (one run per cell), beside
    the pooled value and its hierarchical interval: a reader sees whether the seeds agree within
    the pooled interval.  ``estimates``: capacity, coupling, entropy and cv (:data:`CV_ROW`)."""
    rows = fit_rows.set_index(["fit", "parameter"])
    beta = rows.loc[("eps fixed", "beta")]
    pooled = {"capacity exponent alpha (eps fixed)": estimates["capacity"],
              "data exponent beta (eps fixed)": Estimate("beta", beta.estimate, beta.ci_low,
                                                         beta.ci_high),
              "coupling gamma (eps fixed)": estimates["coupling"],
              "free fit's E - exact eps (nats)": estimates["entropy"],
              CV_ROW: estimates["cv"]}
    columns = {}
    for s in np.unique(data.seed):
        one = data.subset(data.seed == s)
        fixed = fit_chinchilla(one.P, one.D, one.loss, E=one.eps)
        held_out = [held_out_rmse(one.P, one.D, one.loss, one.eps, c, FOLDS, seed)[0]
                    for c in (False, True)]
        columns[f"seed {s}"] = [
            fixed.alpha, fixed.beta,
            fit_chinchilla(one.P, one.D, one.loss, E=one.eps, coupled=True).gamma,
            fit_chinchilla(one.P, one.D, one.loss).E - one.eps, held_out[1] - held_out[0]]
    table = pd.DataFrame({"quantity": list(pooled), **columns})
    table["pooled"] = [e.effect for e in pooled.values()]
    table["ci_low"] = [e.ci_low for e in pooled.values()]
    table["ci_high"] = [e.ci_high for e in pooled.values()]
    return table
