"""Many student runs at once: each cached under a hash of its configuration (a grid that is
killed halfway resumes without redoing finished runs), the runs of one trunk trained together
(:func:`~.train.train_budgets`), and the jobs spread over an executor.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm  # plain text: the book has no widget support

from . import train
from .cache import array_digest, cache_dir, cached, config_hash
from .executor import run_jobs, worker_threads
from .models import pick_device
from .train import TrainConfig, TrainResult, shared_trunk, student_parameters


def run_grid(configs: Sequence[TrainConfig], source, eval_tokens: np.ndarray,
             device: str | torch.device | None = None, cache: str | None = None,
             progress: bool = True, executor=None) -> list[TrainResult]:
    """Train every configuration, each cached under a hash of the config, the source's matrices,
    the evaluation tokens, the training code's version and the device type: finished runs are
    read back, so a killed grid resumes where it stopped; CPU runs are also keyed by the thread
    count they train with (:func:`~.executor.worker_threads`).  ``executor`` spreads the runs over
    processes or a cluster (:mod:`scaling_utils.executor`); they then share ``cache``, which
    must be a path every worker sees."""
    device = pick_device(device).type
    # CPU float sums depend on how many threads share them (differences ~1e-8), so a CPU run is
    # keyed by the thread count it trains with, which each job sets: the same executor reads a
    # grid back bit for bit, and a run is never mistaken for one made with another count.
    threads = worker_threads(executor) if device == "cpu" else None
    fingerprint = {"source": source.digest(), "eval": array_digest(np.asarray(eval_tokens)),
                   "train_version": train.TRAIN_VERSION,
                   "device": device, "torch": torch.__version__, "threads": threads}
    job = partial(_cached_runs, source=source, eval_tokens=np.asarray(eval_tokens),
                  device=device, fingerprint=fingerprint, cache=str(cache_dir(cache)))
    # runs that share a trunk are one job (see train_budgets); the longest jobs go first, so
    # that parallel workers finish together
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(config_hash(shared_trunk(c)), []).append(i)
    jobs = sorted(groups.values(), key=lambda g: -max(_cost(configs[i]) for i in g))
    if executor is None or executor == "serial":
        trained = [job([configs[i] for i in g]) for g in tqdm(jobs, disable=not progress,
                                                               desc="grid")]
    else:
        # runs already stored are read here: workers are started only for jobs still to train
        stored = {i: _stored_run(configs[i], fingerprint, str(cache_dir(cache)))
                  for i in range(len(configs))}
        missing = [g for g in jobs if any(stored[i] is None for i in g)]
        done = iter(run_jobs(job, [[configs[i] for i in g] for g in missing], executor)
                    if missing else [])
        trained = [next(done) if g in missing else [stored[i] for i in g] for g in jobs]
    results = {}
    for g, runs in zip(jobs, trained):
        results.update(zip(g, runs))
    return [results[i] for i in range(len(configs))]


def _cost(config: TrainConfig) -> float:
    """Roughly proportional to a run's training time: parameters x tokens."""
    return student_parameters((config.spec.n_layers, config.spec.d_model, 0)) * config.D


def _cached_runs(configs: Sequence[TrainConfig], source, eval_tokens: np.ndarray, device: str,
                 fingerprint: dict, cache: str) -> list[TrainResult]:
    """Runs of one trunk, each read from or stored under its own key: the first missing run's
    computation trains the whole trunk (its entry's seconds hold the trunk's), the others are
    stored from it."""
    trained: list[TrainResult] = []

    def compute(i):
        if not trained:
            with torch_threads(fingerprint["threads"]):
                trained.extend(train.train_budgets(configs, source, eval_tokens,
                                                  device=device))
        return trained[i]

    return [cached("train", {"config": asdict(c), **fingerprint}, partial(compute, i),
                   folder=cache) for i, c in enumerate(configs)]


class _NotStored(LookupError):
    """Raised instead of training, to ask the cache whether a run is stored."""


def _stored_run(config: TrainConfig, fingerprint: dict, cache: str) -> TrainResult | None:
    """The stored result of a run, or None when it has not been trained (under the same key as
    :func:`_cached_run`)."""
    def refuse():
        raise _NotStored

    try:
        return cached("train", {"config": asdict(config), **fingerprint}, refuse, folder=cache)
    except _NotStored:
        return None


@contextmanager
def torch_threads(n: int | None):
    """Inside the block torch uses ``n`` intra-op threads (``None``: leave as is)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
