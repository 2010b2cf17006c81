"""Theorem 3's study: the SNR of every run of the Theorem 2 grid and of a pretrained model
against context, its exponents, and the three verdicts, as one typed result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import train
from ...cache import array_digest, cached
from ...runs import run_grid
from ..base import ChapterResult, says_what_was_cached
from . import text
from ...capture import final_representations
from ...estimators.snr import WHITENED_VERSION, snr, whitened_snr
from .estimators import (CONTEXT_COLUMNS, SNR_VERSION, at_positions, belief_ceiling,
                         context_table, estimator_check, exponent_table, grid_exponents,
                         per_seed_exponents, sequence_exponents, snr_exponent, snr_grid_table,
                         token_reference, whitened_grid)
from .rules import (D_READINGS, WHITENED, decide_context, decide_data, decide_size,
                    too_few_context_bins)


@dataclass(frozen=True, kw_only=True)
class Theorem3Result(ChapterResult):
    """Everything the Theorem 3 chapter shows: the estimator check, the SNR of every run, the
    exponents with their hierarchical intervals, the seed-by-seed exponents, SNR against
    context in a pretrained model, and the verdicts."""

    PREFIX = "t3"

    check: pd.DataFrame  # mixtures with a known SNR: corrected and plug-in bias
    grid: pd.DataFrame  # one row per run: P, D, seed, loss, SNR and its interval over
    # sequences, the whitened SNR and its interval, and its fraction of the ceiling
    untrained: pd.DataFrame  # SNR and whitened SNR of untrained students of each size
    references: pd.DataFrame  # whitened SNR of the exact belief state (the ceiling) and of
    # the current token alone
    exponents: pd.DataFrame  # D and P exponents (trace ratio, then whitened): hierarchical and
    # sequences-only intervals
    per_size: pd.DataFrame  # exponent in D within each size, with its verdict word, on both scales
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
        return {"model": self.model_name,
                "size_floor_reading": text.size_floor_reading(self._numbers())}


def untrained_snr(cfg, source, tokens: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    """The SNR and the whitened SNR of an untrained student of each size (their floors: a
    random network already encodes the current token)."""
    filtered = source.filtered_states(tokens)
    rows = []
    for size in cfg.sizes:
        student = train.build_student(train.StudentSpec(*size), source.n_symbols, cfg.context,
                                      cfg.seed).eval()
        features = final_representations(student, tokens, batch_size=256)  # one forward pass
        rows.append(dict(P=train.non_embedding_parameters(student), width=size[1],
                         snr=snr(*at_positions(features, filtered, cfg.min_position),
                                 n_boot=0).snr,
                         snr_white=whitened_snr(*at_positions(features, states, cfg.min_position),
                                                n_boot=0).snr))
    return pd.DataFrame(rows)


def reference_snrs(cfg, source, tokens: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    """The whitened SNR of the exact belief state (the ceiling) and of the current token alone,
    with their intervals over sequences (cached: the ceiling whitens 127 dimensions)."""
    def measure():
        rows = []
        for name, est in (("exact belief state (ceiling)", belief_ceiling(
                              source, tokens, states, cfg.min_position, cfg.n_boot, cfg.seed)),
                          ("current token alone", token_reference(
                              tokens, states, source.n_symbols, cfg.min_position, cfg.n_boot,
                              cfg.seed))):
            rows.append(dict(representation=name, snr_white=est.snr, ci_low=est.ci_low,
                             ci_high=est.ci_high, dims=est.dims, classes=est.n_classes))
        return pd.DataFrame(rows)
    return cached("snr_ceiling", {"source": source.digest(), "tokens": array_digest(tokens, states),
                                  "min_position": cfg.min_position, "n_boot": cfg.n_boot,
                                  "seed": cfg.seed, "version": SNR_VERSION,
                                  "whitened": WHITENED_VERSION}, measure)


def per_size_exponents(grid: pd.DataFrame, scales: dict, seed: int) -> pd.DataFrame:
    """Each size's own exponent in D on each scale (``scales``: column prefix -> the runs'
    estimates), with its hierarchical interval and the verdict the pooled rule gives it."""
    per_size = []
    for p in sorted(grid.P.unique()):
        rows = np.flatnonzero(grid.P == p)
        row = dict(P=p)
        for prefix, estimates in scales.items():
            fit = snr_exponent(grid.D.iloc[rows], [estimates[i] for i in rows],
                               cell=grid.D.iloc[rows], seed=seed)
            row.update({f"{prefix}exponent": fit.exponent, f"{prefix}ci_low": fit.ci_low,
                        f"{prefix}ci_high": fit.ci_high, f"{prefix}verdict": decide_data(fit).word})
        per_size.append(row)
    return pd.DataFrame(per_size)


def snr_sequences(cfg, source, eval_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``snr_sequences`` held-out sequences and the hidden states that emitted them
    (drawn again with the evaluation set's seed: the same tokens, checked)."""
    tokens, states = source.sample_with_states(len(eval_tokens), eval_tokens.shape[1],
                                               cfg.seed + train.EVAL_SEED_OFFSET)
    if not np.array_equal(tokens, eval_tokens):
        raise RuntimeError("the hidden states were drawn for other tokens than the evaluation "
                           "set's; train.evaluation_set and this draw must use one seed.")
    return tokens[:cfg.snr_sequences], states[:cfg.snr_sequences]


@says_what_was_cached
def study(cfg) -> Theorem3Result:
    """Measure the SNR of every run of the student grid of ``cfg`` (trained by Theorem 2, read
    back from the cache), fit its exponents in D and P with hierarchical intervals, measure SNR
    against context in a pretrained model, and decide the three verdicts."""
    grid_spec = train.known_language(cfg.values)
    configs = train.StudentGrid.from_values(cfg.values, grid_spec.source.n_symbols).configs()
    results = run_grid(configs, grid_spec.source, grid_spec.eval_tokens,
                             device=cfg.device, executor=cfg.executor)
    tokens, states = snr_sequences(cfg, grid_spec.source, grid_spec.eval_tokens)
    grid, estimates = snr_grid_table(results, grid_spec.source, tokens, cfg.min_position,
                                     cfg.n_boot, cfg.seed, cfg.device)
    white = whitened_grid(results, tokens, states, cfg.min_position, cfg.n_boot, cfg.seed,
                          cfg.device)
    references = reference_snrs(cfg, grid_spec.source, tokens, states)
    grid = grid.assign(snr_white=[e.snr for e in white], white_ci_low=[e.ci_low for e in white],
                       white_ci_high=[e.ci_high for e in white])
    grid["fraction"] = grid.snr_white / references.snr_white.iloc[0]
    untrained = untrained_snr(cfg, grid_spec.source, tokens, states)
    pooled = grid_exponents(grid, estimates, cfg.seed)
    pooled_white = grid_exponents(grid, white, cfg.seed)
    exponents = pd.concat([
        exponent_table(pooled, sequence_exponents(grid, estimates)),
        exponent_table({name: pooled_white[scale] for name, scale in WHITENED.items()},
                       {name: sequence_exponents(grid, white)[scale]
                        for name, scale in WHITENED.items()})], ignore_index=True)
    per_size = per_size_exponents(grid, {"": estimates, "whitened_": white}, cfg.seed)
    context, model_name = context_table(cfg)
    if len(context) > 1:
        context_verdict = decide_context(snr_exponent(context.n, list(context.estimate),
                                                      df=int(context.windows.min()) - 1))
    else:
        context_verdict = too_few_context_bins()
        context = pd.DataFrame(columns=CONTEXT_COLUMNS)
    decided = (*(decide_data(pooled["data"], reading) for reading in D_READINGS),
               decide_size(pooled["size"]), context_verdict,
               decide_data(pooled_white["data"], name="data_whitened"),
               decide_size(pooled_white["size"], name="size_whitened"))
    return Theorem3Result(
        check=estimator_check(cfg.seed), grid=grid, untrained=untrained, references=references,
        exponents=exponents,
        per_size=per_size, seeds=per_seed_exponents(grid, estimates, pooled),
        context=context.drop(columns="estimate"), model_name=model_name,
        min_position=cfg.min_position, snr_classes=cfg.snr_classes, n_boot=cfg.n_boot,
        verdicts=decided)
