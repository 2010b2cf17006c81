"""Theorem 4's study: train the profile's students, read every capability and the SNR at
checkpoints along training, and decide the chapter's verdicts, as one typed result."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from functools import partial
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import special

from ...cache import cached
from ...estimators.snr import WHITENED_VERSION, snr, whitened_snr
from ...estimators.thresholds import ThresholdFit
from ...tasks import TaskSuite
from ...train import EVAL_SEED_OFFSET, StudentGrid, TrainConfig, TrainResult, load_student
from ..base import ChapterResult, says_what_was_cached
from . import text
from .estimators import (MECHANISM_COLUMNS, METRIC_COLUMNS, SWITCH_COLUMNS, CollapseEvidence,
                         MechanismEvidence, MetricEvidence, SwitchEvidence, collapse_evidence,
                         collapse_table, crossing_resources, known_threshold_demo,
                         mechanism_evidence, metric_evidence, seed_thresholds, switch_evidence,
                         threshold_table)
from .rules import (decide_abrupt, decide_collapse, decide_induction, decide_mechanism,
                    decide_metric, decide_shared, infinite_snr, tied_by_construction)

EMERGENCE_VERSION = 4  # bump when a change here changes the capability tables
# Where the SNR is read (the residual stream of the last block): before its MLP (the default,
# every depth has it), before the whole block, or at the final norm that the output head reads.
SNR_SITES = ("last_mlp_input", "last_block_input", "final")
# Each run's test instances are drawn with seed EXAMPLE_SEED_OFFSET + (CRC-32 of the run's seed
# and size) mod EXAMPLE_SEED_RANGE: past the profile seeds and their evaluation sets (seed +
# EVAL_SEED_OFFSET), so no run is scored on instances drawn like another draw of the chapter.
EXAMPLE_SEED_OFFSET = 20_000
EXAMPLE_SEED_RANGE = 1_000_000
EVAL_SEQUENCES = 256  # held-out task sequences each run's loss (a collapse candidate) is read on
# The noise sweep: isotropic Gaussian noise added before the last MLP at the final weights, its
# variance per dimension these multiples of the representation's within-class variance per
# dimension, so that the SNR falls to about SNR / (1 + multiple): from the trained SNR down by a
# factor of about 4000, far past any threshold the runs cross along training.
NOISE_MULTIPLES = (0.0,) + tuple(2.0 ** np.arange(-3, 13))
SWEEP_VERSION = 2  # bump when a change here changes the noise sweeps


@dataclass(frozen=True, kw_only=True)
class Theorem4Result(ChapterResult):
    """Everything the Theorem 4 chapter shows: the capability table (one row per task, run and
    checkpoint), the pooled thresholds in SNR with the threshold rule's evidence, the threshold
    each seed alone gives, the collapse rule's held-out deviances and how often each variable
    wins, the metric contrast per run, the resources that crossing costs, the estimator on a
    known threshold, and the verdicts."""

    PREFIX = "t4"

    profile: str
    snr_site: str
    table: pd.DataFrame
    thresholds: pd.DataFrame
    seed_thresholds: pd.DataFrame
    collapse_evidence: CollapseEvidence
    metric_evidence: MetricEvidence
    crossings: pd.DataFrame
    known: ThresholdFit
    level: float  # the success level that counts as crossed
    sweep: pd.DataFrame  # success and SNR under added noise at each run's final weights
    mechanism_evidence: dict[str, MechanismEvidence]  # per task
    switch_evidence: dict[str, SwitchEvidence]  # per task: each run's own switch along training
    whitened_mechanism_evidence: dict[str, MechanismEvidence]  # the same on the whitened SNR
    whitened_switch_evidence: dict[str, SwitchEvidence]
    induction_evidence: MetricEvidence  # the copy runs' in-context-learning score against D

    @property
    def by_construction(self) -> bool:
        """Was the SNR read where success is a function of it (not evidence)?"""
        return tied_by_construction(self.snr_site)

    @property
    def tasks(self) -> tuple:
        """The tasks, in the suite's order."""
        return tuple(dict.fromkeys(self.table.task))

    @property
    def collapse(self) -> pd.DataFrame:
        """Held-out deviance per point of each variable, per learned task and over all."""
        return collapse_table(self.collapse_evidence)

    @property
    def collapse_wins(self) -> dict:
        """The share of bootstrap resamples of runs in which each candidate predicts best."""
        return dict(self.collapse_evidence.wins)

    @property
    def switches(self) -> pd.DataFrame:
        """Per task and run that learned it: its own switch along training (theta, width, the
        checkpoints' resolution in ln SNR, the width floored at it) and whether it enters the
        abruptness and shared-threshold rules."""
        return _per_run_table(self.switch_evidence, SWITCH_COLUMNS)

    @property
    def mechanism(self) -> pd.DataFrame:
        """Per task and run that learned it: the threshold in SNR along training and under
        noise at the final weights, their ln ratio, and whether the run enters the rule."""
        return _per_run_table(self.mechanism_evidence, MECHANISM_COLUMNS)

    @property
    def whitened_tasks(self) -> tuple:
        """The tasks whose whitened SNR is finite at every checkpoint (one with few distinct
        inputs separates its answers without noise: no threshold in it can be read)."""
        white = self.table.get("snr_white", pd.Series(np.nan, index=self.table.index))
        infinite = set(self.table.task[np.isinf(white.astype(float))])
        return tuple(t for t in self.tasks if t not in infinite)

    @property
    def whitened_mechanism(self) -> pd.DataFrame:
        """As :attr:`mechanism`, on the whitened SNR (the tasks of :attr:`whitened_tasks`)."""
        return _per_run_table({t: e for t, e in self.whitened_mechanism_evidence.items()
                               if t in self.whitened_tasks}, MECHANISM_COLUMNS)

    @property
    def mechanism_by_size(self) -> pd.DataFrame:
        """Per task and size: the runs that enter the mechanism rule and their mean ln ratio of
        the threshold under noise to the one along training, on both scales (the rule pools
        the sizes; this shows whether they agree)."""
        rows = []
        for scale, evidence in (("trace ratio", self.mechanism_evidence),
                                ("whitened", self.whitened_mechanism_evidence)):
            for task, e in evidence.items():
                if scale == "whitened" and task not in self.whitened_tasks:
                    continue
                used = e.per_run[e.per_run.used.astype(bool)]
                for size, part in used.groupby("size", sort=False):
                    rows.append({"task": task, "size": size, "scale": scale, "runs": len(part),
                                 "mean ln ratio": float(part.log_ratio.mean())})
        table = pd.DataFrame(rows, columns=["task", "size", "scale", "runs", "mean ln ratio"])
        return table.pivot_table(index=["task", "size"], columns="scale",
                                 values="mean ln ratio").reset_index() if len(table) else table

    @property
    def metric(self) -> pd.DataFrame:
        """Per run that learned the multi-token task: the switch widths in ln D and their ratio."""
        return self.metric_evidence.per_run

    def _numbers(self) -> dict:
        return text.numbers(self)

    def reasons(self) -> dict:
        return text.reasons(self)

    def _texts(self) -> dict:
        return {f"mechanism{scale}_reading_{t}": text.mechanism_reading(self, t, bool(scale))
                for scale in ("", "_whitened") for t in self.tasks}

    def summary(self) -> dict:
        """The headline numbers stored with the chapter's summary: theta with its interval for
        every task (NaN, with a reason, where none was fitted) and the counts the pages that
        relate the theorems read."""
        return text.summary(self._numbers())


def _per_run_table(evidence: dict, columns: list) -> pd.DataFrame:
    """The per-run tables of every task's evidence, stacked with a task column."""
    frames = [e.per_run.assign(task=t) for t, e in evidence.items() if len(e.per_run)]
    if not frames:
        return pd.DataFrame(columns=["task", *columns])
    return pd.concat(frames, ignore_index=True)[["task", *columns]]


# --------------------------------------------------------------------------- measurement

def _example_seed(config: TrainConfig) -> int:
    """Each run is scored on its own instances, so the spread between runs carries the sampling
    noise of the test instances too."""
    record = json.dumps([config.seed, asdict(config.spec)], sort_keys=True)
    return EXAMPLE_SEED_OFFSET + zlib.crc32(record.encode()) % EXAMPLE_SEED_RANGE


def _site_module(model, site: str):
    layer = model.model.layers[-1]
    return {"last_mlp_input": layer.post_attention_layernorm, "last_block_input": layer}[site]


def _forward(model, tokens: np.ndarray, site: str) -> tuple[np.ndarray, np.ndarray]:
    """The representation at ``site`` and the logits at every position (float64, CPU)."""
    from ...capture import final_representation

    device = next(model.parameters()).device
    seen = {}
    handle = None
    if site != "final":
        def grab(module, args, kwargs):
            seen["h"] = args[0] if args else kwargs["hidden_states"]
        handle = _site_module(model, site).register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.inference_mode():
            hidden, logits = final_representation(model, torch.as_tensor(tokens, device=device))
    finally:
        if handle is not None:
            handle.remove()
    hidden = seen.get("h", hidden)
    return hidden.double().cpu().numpy(), logits.double().cpu().numpy()


def _margin(logits: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per instance, the smallest over answer tokens of the right logit minus the best other
    (exact match, teacher forced, is margin > 0)."""
    right = np.take_along_axis(logits, truth[..., None], -1)[..., 0]
    others = np.where(np.eye(logits.shape[-1], dtype=bool)[truth], -np.inf, logits).max(-1)
    return (right - others).min(1)


def measure_run(result: TrainResult, suite: TaskSuite, n_examples: int,
                site: str = "last_mlp_input", device=None) -> pd.DataFrame:
    """Every task at every kept checkpoint of one run: exact match (all answer tokens right,
    teacher forced, which is greedy decoding's exact match), token accuracy, the mean answer
    log-probability per token and its normalised form 1 - logprob / ln(1/alphabet) (0 = a
    uniform guess over the alphabet, 1 = certain), for copying the in-context-learning score
    (loss on the repeat minus loss on the first occurrence) and its normalised form
    -score / ln(alphabet), the logit margin (per instance, the smallest
    over answer tokens of the right logit minus the best other; exact match means margin > 0),
    and the SNR of the representation at ``site`` with the answer token as the label (one
    forward pass per checkpoint for all tasks)."""
    if site not in SNR_SITES:
        raise ValueError(f"snr_site must be one of {SNR_SITES}, got {site!r}.")
    examples = [suite.examples(task, n_examples, _example_seed(result.config)) for task in suite.tasks]
    tokens = np.concatenate([ex.tokens for ex in examples])
    c = result.config
    size = f"{c.spec.n_layers}x{c.spec.d_model}"
    rows = []
    for i, (d, loss) in enumerate(zip(result.curve_tokens, result.curve_loss)):
        hidden, logits = _forward(load_student(result, device, checkpoint=i), tokens, site)
        for j, ex in enumerate(examples):
            block = slice(j * n_examples, (j + 1) * n_examples)
            cols = np.arange(ex.answer_start - 1, ex.answer_start + ex.answer_length - 1)
            z, truth = logits[block][:, cols], ex.answers
            log_p = z - special.logsumexp(z, -1, keepdims=True)
            margin = _margin(z, truth)
            logprob = np.take_along_axis(log_p, truth[..., None], -1)[..., 0].mean(1)
            icl = _icl_score(logits[block], ex, logprob) if ex.task == "copy" else np.nan
            ratio, white = _snrs(hidden[block][:, cols], truth)[::3]
            rows.append(dict(task=ex.task, size=size, P=result.n_parameters, seed=c.seed,
                             run=f"{size} s{c.seed}", checkpoint=i, D=int(d),
                             flops=6.0 * result.n_parameters * d, loss=float(loss),
                             exact=float((margin > 0).mean()), chance=suite.chance(ex.task),
                             token_accuracy=float((z.argmax(-1) == truth).mean()),
                             logprob=float(logprob.mean()),
                             logprob_norm=float(np.clip(1 + logprob.mean() / np.log(suite.alphabet), 0, 1)),
                             margin=float(margin.mean()), answer_tokens=ex.answer_length,
                             n=n_examples, snr=float(ratio), snr_white=float(white),
                             icl_score=icl,
                             icl_norm=float(np.clip(-icl / np.log(suite.alphabet), 0, 1))))
    return pd.DataFrame(rows)


def _snrs(h: np.ndarray, answers: np.ndarray) -> tuple[float, float, float, float]:
    """The SNR (trace ratio), its signal and noise power, and the whitened SNR of the
    representation ``h`` (instances x answer positions x width) with the answer tokens as
    labels (each instance one group); NaN where too few samples of a class allow one."""
    x, labels = h.reshape(-1, h.shape[-1]), answers.ravel()
    groups = np.repeat(np.arange(h.shape[0]), h.shape[1])
    try:
        m = snr(x, labels, groups, n_boot=0)
        out = [m.snr, m.signal_power, m.noise_power]
    except ValueError:
        out = [np.nan] * 3
    try:
        out.append(whitened_snr(x, labels, groups, n_boot=0).snr)
    except (ValueError, np.linalg.LinAlgError):
        out.append(np.nan)
    return tuple(out)


def _icl_score(logits: np.ndarray, ex, repeat_logprob: np.ndarray) -> float:
    """The in-context-learning score of a copy instance set (Olsson et al. 2022): the mean loss
    on the repeated segment minus the mean loss on its first occurrence, which is random (in
    nats; about -ln(alphabet) once induction heads copy, 0 before)."""
    m = ex.answer_length
    z = logits[:, :m]  # positions 0..m-1 predict the first occurrence x_1..x_m
    log_p = z - special.logsumexp(z, -1, keepdims=True)
    first = np.take_along_axis(log_p, ex.tokens[:, 1:m + 1, None], -1)[..., 0]
    return float(first.mean() - repeat_logprob.mean())


def _last_mlp_readout(model):
    """The rest of the forward pass from the residual stream before the last MLP: h + MLP(norm
    h), the final norm, the output head (position by position, so a perturbation of h at one
    position changes only that position's logits)."""
    layer = model.base_model.layers[-1]
    head, norm = model.get_output_embeddings(), model.base_model.norm

    def readout(h: torch.Tensor) -> torch.Tensor:
        return head(norm(h + layer.mlp(layer.post_attention_layernorm(h))))
    return readout


def noise_sweep(result: TrainResult, suite: TaskSuite, n_examples: int, device=None) -> pd.DataFrame:
    """Success against SNR at the final weights: the representation before the last MLP at each
    task's answer positions, plus isotropic Gaussian noise of variance ``multiple`` x its
    within-class variance per dimension (:data:`NOISE_MULTIPLES`), read out by the rest of the
    network; one row per task and multiple with the SNR of the noised representation (labels:
    the answer tokens; its signal and noise power beside it) and the exact match it gives.
    Theorem 4 says success is f_C(S + N): if so, the noise switches a task off at the SNR where
    training switched it on."""
    c = result.config
    size = f"{c.spec.n_layers}x{c.spec.d_model}"
    last = len(result.curve_tokens) - 1
    model = load_student(result, device, checkpoint=last)
    examples = [suite.examples(task, n_examples, _example_seed(c)) for task in suite.tasks]
    hidden, _ = _forward(model, np.concatenate([ex.tokens for ex in examples]), "last_mlp_input")
    readout = _last_mlp_readout(model)
    rng = np.random.default_rng(_example_seed(c) + 1)
    rows = []
    for j, ex in enumerate(examples):
        cols = np.arange(ex.answer_start - 1, ex.answer_start + ex.answer_length - 1)
        h = hidden[j * n_examples:(j + 1) * n_examples][:, cols]  # n x L x width
        within = _snrs(h, ex.answers)[2] / h.shape[-1]  # the estimator's noise power, per dim.
        for multiple in NOISE_MULTIPLES:
            noised = h + np.sqrt(multiple * within) * rng.standard_normal(h.shape)
            with torch.inference_mode():
                z = readout(torch.as_tensor(noised, dtype=torch.float32,
                                            device=next(model.parameters()).device))
            ratio, signal, noise, white = _snrs(noised, ex.answers)
            rows.append(dict(task=ex.task, size=size, P=result.n_parameters, seed=c.seed,
                             run=f"{size} s{c.seed}", checkpoint=last, multiple=float(multiple),
                             snr=float(ratio), signal_power=float(signal),
                             noise_power=float(noise), snr_white=float(white),
                             exact=float((_margin(z.double().cpu().numpy(), ex.answers) > 0).mean()),
                             chance=suite.chance(ex.task), n=n_examples))
    return pd.DataFrame(rows)


def _measured_run(config: TrainConfig, suite: TaskSuite, eval_tokens: np.ndarray,
                  n_examples: int, site: str, device, cache: str) -> pd.DataFrame:
    """One job of the grid: train (or read back) one run, then measure it (cached by the run's
    configuration and the thread count it computes with, like the run itself)."""
    from ...models import pick_device
    from ...runs import run_grid

    [result] = run_grid([config], suite, eval_tokens, device=device, cache=cache, progress=False)
    kind = pick_device(device).type
    key = {"run": asdict(config), "suite": suite.digest(), "n_examples": n_examples, "site": site,
           "device": kind, "threads": torch.get_num_threads() if kind == "cpu" else None,
           "version": EMERGENCE_VERSION, "whitened": WHITENED_VERSION}
    capabilities = cached("capabilities", key,
                          lambda: measure_run(result, suite, n_examples, site, device), folder=cache)
    sweep_key = {k: v for k, v in key.items() if k not in ("site", "version")}
    sweep = cached("noise_sweeps", {**sweep_key, "version": SWEEP_VERSION},
                   lambda: noise_sweep(result, suite, n_examples, device), folder=cache)
    return capabilities, sweep


def capability_table(configs: Sequence[TrainConfig], suite: TaskSuite, eval_tokens: np.ndarray,
                     n_examples: int, site: str = "last_mlp_input", device=None,
                     executor=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and measure every run (spread over ``executor``; see :mod:`.executor`): one row
    per task, run and checkpoint (see :func:`measure_run`), and the noise sweeps at the final
    weights (see :func:`noise_sweep`)."""
    from ...cache import cache_dir
    from ...executor import open_executor, run_jobs

    job = partial(_measured_run, suite=suite, eval_tokens=np.asarray(eval_tokens),
                  n_examples=n_examples, site=site, device=device, cache=str(cache_dir()))
    # largest runs first, so that parallel workers finish together
    order = sorted(range(len(configs)), key=lambda i: -configs[i].spec.n_layers
                   * configs[i].spec.d_model ** 2 * configs[i].D)
    if isinstance(executor, str) and executor != "serial":
        with open_executor(executor) as opened:
            frames = run_jobs(job, [configs[i] for i in order], opened)
    else:
        frames = run_jobs(job, [configs[i] for i in order], executor)
    frames = [frames[order.index(i)] for i in range(len(configs))]
    return (pd.concat([f[0] for f in frames], ignore_index=True),
            pd.concat([f[1] for f in frames], ignore_index=True))



# --------------------------------------------------------------------------- the study

@says_what_was_cached
def study(cfg) -> Theorem4Result:
    """Train the profile's students (``sizes`` x ``n_seeds`` runs), measure every capability at
    every checkpoint, and decide the chapter's claims (see the module docstring)."""
    suite = TaskSuite(cfg.alphabet, cfg.copy_length, cfg.recall_pairs, cfg.modulus)
    eval_tokens = suite.sample(EVAL_SEQUENCES, suite.context, seed=cfg.seed + EVAL_SEED_OFFSET)
    configs = StudentGrid.from_values(dict(cfg.values, context=suite.context), suite.n_symbols,
                                      n_evals=cfg.n_checkpoints, eval_spacing="log",
                                      keep_checkpoints=True).configs()
    table, sweep = capability_table(configs, suite, eval_tokens, cfg.n_examples, cfg.snr_site,
                                    cfg.device, cfg.executor)
    return analyse(table, sweep, suite, cfg.n_boot, cfg.seed, cfg.snr_site, cfg.level,
                   profile=cfg.profile)


def analyse(table: pd.DataFrame, sweep: pd.DataFrame, suite: TaskSuite, n_boot: int, seed: int,
            snr_site: str = "last_mlp_input", level: float = 0.5, profile: str = "") -> Theorem4Result:
    """The chapter's estimates and verdicts from a capability table and the noise sweeps (see
    :func:`study`)."""
    by_construction = tied_by_construction(snr_site)
    thresholds = threshold_table(table, "snr", "exact", n_boot, seed, groups=("run",))
    per_seed = seed_thresholds(table, n_boot, seed)
    collapse = collapse_evidence(table, n_boot, seed)
    multi = [t for t in suite.tasks if t == "copy" and suite.copy_length > 1]
    none = MetricEvidence("copy", pd.DataFrame(columns=METRIC_COLUMNS), np.nan, np.nan, np.nan, 0)
    metric = metric_evidence(table[table.task == multi[0]]) if multi else none
    induction = (metric_evidence(table[table.task == "copy"], "icl_norm")
                 if "copy" in suite.tasks and suite.copy_length > 1 else none)
    crossings = crossing_resources(table, "exact", level)
    switches = {t: switch_evidence(table[table.task == t]) for t in suite.tasks}
    mechanism = {t: mechanism_evidence(table[table.task == t], sweep[sweep.task == t])
                 for t in suite.tasks}
    # the same readings on the whitened SNR (missing in tables measured before it existed)
    white, white_sweep = (f.assign(snr=f.snr_white if "snr_white" in f else np.nan)
                          for f in (table, sweep))
    infinite = set(white.task[np.isinf(white.snr.astype(float))])  # see whitened_tasks
    white_switches = {t: switch_evidence(white[white.task == t]) for t in suite.tasks}
    white_mechanism = {t: mechanism_evidence(white[white.task == t],
                                             white_sweep[white_sweep.task == t])
                       for t in suite.tasks}
    verdicts = tuple([decide(switches[t], by_construction) for decide in (decide_abrupt,
                                                                           decide_shared)
                      for t in suite.tasks]
                     + [decide_collapse(collapse, by_construction), decide_metric(metric)]
                     + [decide_mechanism(mechanism[t], snr_site) for t in suite.tasks]
                     + [decide_induction(induction)]
                     + [infinite_snr("shared_whitened", t) if t in infinite else
                        decide_shared(white_switches[t], by_construction, "shared_whitened")
                        for t in suite.tasks]
                     + [infinite_snr("mechanism_whitened", t) if t in infinite else
                        decide_mechanism(white_mechanism[t], snr_site, "mechanism_whitened")
                        for t in suite.tasks])
    return Theorem4Result(profile=profile, snr_site=snr_site, table=table, thresholds=thresholds,
                          seed_thresholds=per_seed, collapse_evidence=collapse,
                          metric_evidence=metric, crossings=crossings, sweep=sweep,
                          mechanism_evidence=mechanism, switch_evidence=switches,
                          whitened_mechanism_evidence=white_mechanism,
                          whitened_switch_evidence=white_switches,
                          induction_evidence=induction,
                          known=known_threshold_demo(n_boot, seed), level=level,
                          verdicts=verdicts)
