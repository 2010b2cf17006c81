"""Theorem 2's study: train (or read back) the student grid of a profile, measure the
decomposition and the law fits, and return them with the three verdicts as one typed result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from ...estimators.chinchilla import compare_laws
from ..base import ChapterResult, says_what_was_cached
from .estimators import (CV_ROW, FOLDS, LANGUAGE_ROWS, Estimate, bootstrap_losses,
                         capacity_estimate, cell_intervals, coupling_estimate, decompose,
                         entropy_estimate, entropy_held_out, fit_table, fit_with_floor_profile,
                         gain_per_doubling, held_out_difference, language_table, law_fits,
                         loss_data, per_seed_estimates, results_table, schedule_check,
                         seed_noise)
from .rules import decide_capacity, decide_coupling, decide_entropy
from .text import glued_numbers, glued_texts


@dataclass(frozen=True, kw_only=True)
class Theorem2Result(ChapterResult):
    """Everything the Theorem 2 chapter shows: the language, the grid of runs, the decomposition
    with its intervals, the law fits, the seed-by-seed headline numbers and the verdicts."""

    PREFIX = "t2"

    language: pd.DataFrame  # exact loss eps, entropy rate, unigram entropy (nats, with SEs)
    runs: pd.DataFrame  # one row per run, fresh and repeated data
    cells: pd.DataFrame  # per (P, D): loss, seed SD, runs, B(P), V(P, D) with intervals
    fits: pd.DataFrame  # per law and parameter: estimate, ci_low, ci_high
    laws: pd.DataFrame  # additive against coupled: gamma, AIC, in-sample and held-out RMSE
    seeds: pd.DataFrame  # headline numbers per training seed beside the pooled interval
    returns_d: pd.DataFrame  # loss gained per doubling of D
    returns_p: pd.DataFrame  # loss gained per doubling of P
    seed_noise: float  # seed-to-seed SD of log L within a cell (root mean variance)
    entropy_held_out: Estimate  # held-out RMSE with E held at eps minus with E free
    entropy_profile: pd.DataFrame  # per E: RMSE of log L of the best law with that floor
    free_E_at_bound: bool  # the free fit ended at the lower bound of E
    free_E_bound_share: float  # share of bootstrap replicates whose free fit ended there
    schedule: str  # the students' learning-rate schedule ("wsd" or "cosine")
    # the smallest size under both schedules, per D (see estimators.schedule_check); empty
    # under "cosine", which has nothing to check
    schedule_check: pd.DataFrame
    n_states: int
    n_symbols: int
    context: int
    n_boot: int
    executor: str  # where the training runs went ("serial" when none was named)

    def _language(self, row: int, column: str = "nats") -> float:
        return float(self.language.set_index("quantity").loc[LANGUAGE_ROWS[row], column])

    @property
    def eps(self) -> float:
        """The exact loss given the window on the held-out set."""
        return self._language(0)

    @property
    def eps_se(self) -> float:
        return self._language(0, "se")

    @property
    def unigram(self) -> float:
        """The entropy of the token frequencies."""
        return self._language(2)

    @property
    def runs_per_cell(self) -> int:
        """The smallest number of fresh-data runs in any (P, D) cell."""
        return int(self.cells.n_seeds.min())

    @property
    def df(self) -> int:
        """Degrees of freedom of the spread between training seeds, the bootstrap's unit (a
        seed's runs at every D share a trunk): sum over sizes of (seeds - 1)."""
        return int((self.cells.groupby("P").n_seeds.min() - 1).sum())

    @property
    def cv_difference(self) -> Estimate:
        """Held-out RMSE of log L of the coupled law minus the additive one, with its interval
        (the pooled row of the per-seed table)."""
        row = self.seeds.set_index("quantity").loc[CV_ROW]
        return Estimate("held-out RMSE difference", float(row.pooled), float(row.ci_low),
                        float(row.ci_high))

    def _numbers(self) -> dict:
        return glued_numbers(self)

    def _texts(self) -> dict:
        return glued_texts(self)

    def summary(self) -> dict:
        """Headline numbers for :func:`~...report.save_summary` (read by the overview and the
        integration page)."""
        fits = self.fits.set_index(["fit", "parameter"])
        get = lambda fit, p, col="estimate": float(fits.loc[(fit, p), col])  # noqa: E731
        entropy = self.verdict("entropy")
        return dict(eps=self.eps, fixed_alpha=get("eps fixed", "alpha"),
                    fixed_alpha_low=get("eps fixed", "alpha", "ci_low"),
                    fixed_alpha_high=get("eps fixed", "alpha", "ci_high"),
                    fixed_beta=get("eps fixed", "beta"),
                    fixed_beta_low=get("eps fixed", "beta", "ci_low"),
                    fixed_beta_high=get("eps fixed", "beta", "ci_high"),
                    free_E=get("eps free", "E"), free_E_low=get("eps free", "E", "ci_low"),
                    free_E_high=get("eps free", "E", "ci_high"),
                    gamma=get("coupled, eps fixed", "gamma"),
                    gamma_low=get("coupled, eps fixed", "gamma", "ci_low"),
                    gamma_high=get("coupled, eps fixed", "gamma", "ci_high"),
                    seed_noise=self.seed_noise, verdict=f"fitted entropy: {entropy.word}")


@says_what_was_cached
def study(cfg) -> Theorem2Result:
    """Train (or read back) the student grid of ``cfg`` and measure everything the chapter
    shows: the decomposition, the three law fits with hierarchical-bootstrap intervals, the
    law comparison, the seed-by-seed numbers and the three verdicts."""
    from ... import train
    from ...runs import run_grid

    grid = train.known_language(cfg.values)
    configs = train.StudentGrid.from_values(cfg.values, grid.source.n_symbols).configs()
    # the schedule check: the smallest size's runs again, each a run of its own under the
    # cosine schedule, in the same call so that they share the grid's worker processes
    checked = _checked(configs, cfg)
    again = tuple(replace(c, schedule="cosine", warmup_steps=None) for c in checked)
    everything = run_grid(configs + again, grid.source, grid.eval_tokens,
                                device=cfg.device, executor=cfg.executor)
    results, cosine = everything[:len(configs)], everything[len(configs):]
    check = schedule_check([r for r in results if r.config in checked], cosine)
    runs = results_table(results, grid.eps)
    data = loss_data(results, grid.source, grid.eval_tokens, cfg.device)
    reps = bootstrap_losses(data, cfg.n_boot, cfg.seed)
    fits = law_fits(data, reps)
    estimates = {"capacity": capacity_estimate(fits, reps),
                 "coupling": coupling_estimate(fits, reps),
                 "entropy": entropy_estimate(fits, data, reps),
                 "cv": held_out_difference(data, reps, cfg.seed)}
    held_out = entropy_held_out(data, reps, cfg.seed)
    comparison = compare_laws(data.P, data.D, data.loss, E=data.eps, folds=FOLDS, seed=cfg.seed)
    laws = pd.DataFrame([dict(law=name, gamma=fit.gamma, AIC=fit.aic, RMSE=fit.rmse,
                              **{"held-out RMSE": cv_rmse})
                         for name, fit, cv_rmse in (
                             ("additive", comparison.additive, comparison.cv_rmse_additive),
                             ("coupled", comparison.coupled, comparison.cv_rmse_coupled))])
    cells = cell_intervals(decompose(runs, grid.eps), data, reps)
    fit_rows = fit_table(fits, reps)
    noise = seed_noise(data)
    decided = (decide_capacity(estimates["capacity"]), decide_coupling(estimates["coupling"]),
               decide_entropy(estimates["entropy"], held_out, noise))
    return Theorem2Result(
        language=language_table(grid, cfg.context, cfg.seed), runs=runs, cells=cells,
        fits=fit_rows, laws=laws, seeds=per_seed_estimates(data, estimates, fit_rows, cfg.seed),
        returns_d=gain_per_doubling(cells, "D"), returns_p=gain_per_doubling(cells, "P"),
        seed_noise=noise, entropy_held_out=held_out,
        entropy_profile=fit_with_floor_profile(data),
        free_E_at_bound=bool(fits["point"]["free"].E_at_bound),
        free_E_bound_share=float(fits["replicates"]["free"].E_at_bound.mean()),
        schedule=cfg.schedule, schedule_check=check,
        n_states=grid.source.n_states, n_symbols=grid.source.n_symbols, context=cfg.context,
        n_boot=cfg.n_boot, executor=cfg.executor or "serial", verdicts=decided)


def _checked(configs, cfg) -> list:
    """The runs the schedule check retrains: the smallest size's fresh runs that branch off a
    longer trunk, every D but the largest (none under "cosine", which has nothing to check)."""
    if cfg.schedule != "wsd":
        return []
    return [c for c in configs if c.data_mode == "fresh" and c.D < max(cfg.D)
            and (c.spec.n_layers, c.spec.d_model, c.spec.n_heads) == tuple(cfg.sizes[0])]
