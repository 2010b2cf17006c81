"""Theorem 3's study: the SNR of every run of the Theorem 2 grid and of a pretrained model
against context, its exponents, and the three verdicts, as one typed result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import train
from ...runs import run_grid
from ..base import ChapterResult, says_what_was_cached
from . import text
from .estimators import (CONTEXT_COLUMNS, context_table, estimator_check, exponent_table,
                         grid_exponents, per_seed_exponents, sequence_exponents, snr_exponent,
                         snr_grid_table, student_snr)
from .rules import D_READINGS, decide_context, decide_data, decide_size, too_few_context_bins


@dataclass(frozen=True, kw_only=True)
class Theorem3Result(ChapterResult):
    """Everything the Theorem 3 chapter shows: the estimator check, the SNR of every run, the
    exponents with their hierarchical intervals, the seed-by-seed exponents, SNR against
    context in a pretrained model, and the verdicts."""

    PREFIX = "t3"

    check: pd.DataFrame  # mixtures with a known SNR: corrected and plug-in bias
    grid: pd.DataFrame  # one row per run: P, D, seed, loss, SNR and its interval over sequences
    untrained: pd.DataFrame  # SNR of untrained students of each size
    exponents: pd.DataFrame  # D and P exponents: hierarchical and sequences-only intervals
    per_size: pd.DataFrame  # exponent in D within each size, with its verdict word
    seeds: pd.DataFrame  # exponents per training seed beside the pooled interval
    context: pd.DataFrame  # SNR against context length n (pretrained model)
    model_name: str
    min_position: int
    snr_classes: int
    n_boot: int

    def summary(self) -> dict:
        """Headline numbers for :func:`~scaling_utils.report.save_summary` (read by the overview
        and the integration page)."""
        n = self._numbers()
        return dict(d_exponent=n["d_exponent"], d_ci_low=n["d_ci_low"], d_ci_high=n["d_ci_high"],
                    p_exponent=n["p_exponent"], p_ci_low=n["p_ci_low"], p_ci_high=n["p_ci_high"],
                    n_exponent=n["n_exponent"], n_ci_low=n["n_ci_low"], n_ci_high=n["n_ci_high"],
                    verdict=f"SNR proportional to D: {self.verdict('data').word}")

    def _numbers(self) -> dict:
        return text.numbers(self)

    def _texts(self) -> dict:
        return {"model": self.model_name}


def untrained_snr(cfg, source, tokens: np.ndarray) -> pd.DataFrame:
    """The SNR of an untrained student of each size (its floor: a random network already
    encodes the current token)."""
    states = source.filtered_states(tokens)
    return pd.DataFrame([
        dict(P=train.non_embedding_parameters(student),
             snr=student_snr(student, source, tokens, cfg.min_position, n_boot=0,
                             states=states).snr)
        for student in (train.build_student(train.StudentSpec(*size), source.n_symbols,
                                            cfg.context, cfg.seed).eval() for size in cfg.sizes)])


def per_size_exponents(grid: pd.DataFrame, estimates, seed: int) -> pd.DataFrame:
    """Each size's own exponent in D, with its hierarchical interval and the verdict the pooled
    rule gives it."""
    per_size = []
    for p in sorted(grid.P.unique()):
        rows = np.flatnonzero(grid.P == p)
        fit = snr_exponent(grid.D.iloc[rows], [estimates[i] for i in rows],
                           cell=grid.D.iloc[rows], seed=seed)
        per_size.append(dict(P=p, exponent=fit.exponent, ci_low=fit.ci_low, ci_high=fit.ci_high,
                             verdict=decide_data(fit).word))
    return pd.DataFrame(per_size)


@says_what_was_cached
def study(cfg) -> Theorem3Result:
    """Measure the SNR of every run of the student grid of ``cfg`` (trained by Theorem 2, read
    back from the cache), fit its exponents in D and P with hierarchical intervals, measure SNR
    against context in a pretrained model, and decide the three verdicts."""
    grid_spec = train.known_language(cfg.values)
    configs = train.StudentGrid.from_values(cfg.values, grid_spec.source.n_symbols).configs()
    results = run_grid(configs, grid_spec.source, grid_spec.eval_tokens,
                             device=cfg.device, executor=cfg.executor)
    tokens = grid_spec.eval_tokens[:cfg.snr_sequences]
    grid, estimates = snr_grid_table(results, grid_spec.source, tokens, cfg.min_position,
                                     cfg.n_boot, cfg.seed, cfg.device)
    untrained = untrained_snr(cfg, grid_spec.source, tokens)
    pooled = grid_exponents(grid, estimates, cfg.seed)
    exponents = exponent_table(pooled, sequence_exponents(grid, estimates))
    per_size = per_size_exponents(grid, estimates, cfg.seed)
    context, model_name = context_table(cfg)
    if len(context) > 1:
        context_verdict = decide_context(snr_exponent(context.n, list(context.estimate),
                                                      df=int(context.windows.min()) - 1))
    else:
        context_verdict = too_few_context_bins()
        context = pd.DataFrame(columns=CONTEXT_COLUMNS)
    decided = (*(decide_data(pooled["data"], reading) for reading in D_READINGS),
               decide_size(pooled["size"]), context_verdict)
    return Theorem3Result(
        check=estimator_check(cfg.seed), grid=grid, untrained=untrained, exponents=exponents,
        per_size=per_size, seeds=per_seed_exponents(grid, estimates, pooled),
        context=context.drop(columns="estimate"), model_name=model_name,
        min_position=cfg.min_position, snr_classes=cfg.snr_classes, n_boot=cfg.n_boot,
        verdicts=decided)
