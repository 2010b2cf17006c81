"""Small causal transformers ("students") trained on a synthetic source with a plain torch loop.

Students are transformers' own Llama classes built from a size spec, so the capture code that
serves pretrained models serves them unchanged.  Each run is keyed by a hash of its
configuration and cached atomically: a grid that is killed halfway restarts without redoing
finished runs.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm  # plain text: the book has no widget support

from .cache import array_digest, cache_dir, cached
from .executor import run_jobs, worker_threads
from .models import pick_device, random_llama

DATA_MODES = ("fresh", "repeated")
EVAL_SPACINGS = ("linear", "log")
TRAIN_VERSION = 3  # bump when a change to this module changes what a run produces


@dataclass(frozen=True)
class StudentSpec:
    """Depth, width and heads of a Llama-style student; the MLP is 4 x width (SwiGLU)."""

    n_layers: int
    d_model: int
    n_heads: int

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}).")


@dataclass(frozen=True)
class TrainConfig:
    """One training run.  ``data_mode="fresh"``: every step draws new sequences from the source,
    so D tokens are seen once; ``"repeated"``: a dataset of ``dataset_tokens`` is drawn once and
    cycled until D tokens have been processed."""

    spec: StudentSpec
    D: int  # training tokens processed
    vocab_size: int
    context: int = 64
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    data_mode: str = "fresh"
    dataset_tokens: int | None = None
    n_evals: int = 8
    eval_spacing: str = "linear"  # "log": evaluations evenly spaced in log D (for emergence)
    keep_checkpoints: bool = False  # keep the weights at every evaluation

    def __post_init__(self):
        if self.data_mode not in DATA_MODES:
            raise ValueError(f"data_mode must be one of {DATA_MODES}, got {self.data_mode!r}.")
        if self.eval_spacing not in EVAL_SPACINGS:
            raise ValueError(f"eval_spacing must be one of {EVAL_SPACINGS}, got {self.eval_spacing!r}.")
        if self.data_mode == "repeated" and not self.dataset_tokens:
            raise ValueError("data_mode='repeated' needs dataset_tokens (the size of the dataset).")
        if self.D < self.batch_size * self.context:
            raise ValueError(f"D ({self.D}) is less than one batch "
                             f"({self.batch_size} x {self.context}).")

    @property
    def steps(self) -> int:
        return self.D // (self.batch_size * self.context)

    def eval_steps(self) -> list[int]:
        """Steps after which the held-out loss is measured (the last step always)."""
        if self.eval_spacing == "log":
            points = np.geomspace(1, self.steps, self.n_evals)
        else:
            points = np.linspace(0, self.steps, self.n_evals + 1)[1:]
        return sorted(set(np.maximum(1, np.round(points)).astype(int).tolist()) | {self.steps})


@dataclass(frozen=True)
class TrainResult:
    """Held-out loss along training (``curve_tokens``, ``curve_loss``), the final loss, size and
    speed of one run, its final weights (``state``, CPU tensors) and, when the config asks,
    the weights at every evaluation (``checkpoints``, aligned with ``curve_tokens``)."""

    config: TrainConfig
    n_parameters: int  # non-embedding
    curve_tokens: np.ndarray
    curve_loss: np.ndarray
    seconds: float
    state: dict = field(repr=False, default_factory=dict)
    checkpoints: tuple = field(repr=False, default=())

    @property
    def final_loss(self) -> float:
        return float(self.curve_loss[-1])

    @property
    def tokens_per_second(self) -> float:
        return self.config.D / self.seconds


def build_student(spec: StudentSpec, vocab_size: int, context: int, seed: int = 0,
                  attn_implementation: str = "sdpa"):
    """A randomly initialised Llama student with a 4 x width MLP and tied embeddings
    (``attn_implementation="eager"`` to see attention weights)."""
    return random_llama(spec.n_layers, spec.d_model, spec.n_heads, vocab_size, context, seed,
                        attn_implementation, mlp_ratio=4, tie_embeddings=True)


def non_embedding_parameters(model) -> int:
    """Parameters outside the token embedding and output head (Kaplan et al.'s N)."""
    embedding = {id(p) for p in model.get_input_embeddings().parameters()}
    embedding |= {id(p) for p in model.get_output_embeddings().parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embedding)


def evaluation_set(source, n_sequences: int, context: int, seed: int):
    """Held-out sequences and the source's exact loss on them (positions 1.., as for students).

    The exact loss starts each window from the stationary distribution: the best any model
    that sees only the window can do, i.e. the irreducible loss eps for these students."""
    tokens = source.sample(n_sequences, context, seed)
    exact = source.nll(tokens)[:, 1:]
    return tokens, float(exact.mean()), float(exact.mean(1).std(ddof=1) / math.sqrt(n_sequences))


def evaluate(model, tokens: np.ndarray, batch_size: int = 256) -> float:
    """Mean next-token loss (nats) of ``model`` on ``tokens``, positions 1..T-1."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(tokens), batch_size):
            ids = torch.as_tensor(tokens[start:start + batch_size], device=device)
            n_targets = ids.numel() - len(ids)  # the first position has nothing to predict it
            total += model(input_ids=ids, labels=ids).loss.item() * n_targets
            count += n_targets
    model.train(was_training)
    return total / count


def train_student(config: TrainConfig, source, eval_tokens: np.ndarray,
                  device: str | torch.device | None = None, progress: bool = False) -> TrainResult:
    """AdamW with linear warmup then cosine decay to 10 %, gradient clipping, and the held-out
    loss measured at :meth:`TrainConfig.eval_steps`.  ``source`` is anything with
    ``sample(n_sequences, length, seed)`` (an HMMSource, a TaskSuite)."""
    device = pick_device(device)
    torch.manual_seed(config.seed)
    model = build_student(config.spec, config.vocab_size, config.context, config.seed).to(device)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(0.9, 0.95))
    steps = config.steps
    warmup = max(1, int(config.warmup_fraction * steps))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress_))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    batches = _batches(config, source)
    eval_steps = set(config.eval_steps())
    curve_tokens, curve_loss, checkpoints = [], [], []
    start = time.perf_counter()
    for step in tqdm(range(steps), disable=not progress, leave=False, desc="train"):
        ids = torch.as_tensor(next(batches), device=device)
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        if step + 1 in eval_steps:
            curve_tokens.append((step + 1) * config.batch_size * config.context)
            curve_loss.append(evaluate(model, eval_tokens))
            if config.keep_checkpoints:
                checkpoints.append(_cpu_state(model))
    seconds = time.perf_counter() - start
    return TrainResult(config, non_embedding_parameters(model), np.array(curve_tokens),
                       np.array(curve_loss), seconds, _cpu_state(model), tuple(checkpoints))


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def load_student(result: TrainResult, device: str | torch.device | None = None,
                 attn_implementation: str = "sdpa", checkpoint: int | None = None):
    """Rebuild a trained student from a :class:`TrainResult` (for capture and probing): the
    final weights, or those of evaluation ``checkpoint`` when the run kept them."""
    c = result.config
    model = build_student(c.spec, c.vocab_size, c.context, c.seed, attn_implementation)
    if checkpoint is not None and not result.checkpoints:
        raise ValueError("this run kept no checkpoints; train it with keep_checkpoints=True.")
    model.load_state_dict(result.state if checkpoint is None else result.checkpoints[checkpoint])
    return model.to(pick_device(device)).eval()


# The held-out evaluation set of a profile seed is drawn with seed + EVAL_SEED_OFFSET, so that
# it never coincides with a training stream or another draw seeded by the profile seed itself.
EVAL_SEED_OFFSET = 10_000


def weights_digest(result: TrainResult) -> str:
    """Digest of a run's final weights: runs trained with other thread counts or devices differ
    in their last bits, and results computed from them are keyed by what they were computed on."""
    return array_digest(*(v.float().numpy() for v in result.state.values()))


def training_seeds(seed: int, n_seeds: int) -> range:
    """The training seeds of a profile run with ``seed``: ``seed * n_seeds`` up to
    ``(seed + 1) * n_seeds - 1``, so that runs of two profile seeds share no training run and a
    rerun with another seed is an independent replication."""
    return range(seed * n_seeds, (seed + 1) * n_seeds)


@dataclass(frozen=True)
class StudentGrid:
    """The student runs a chapter's parameters describe: every size x every training budget D x
    ``n_seeds`` training seeds, plus the largest ``repeated_sizes`` sizes trained on a dataset of
    min(D) repeated up to max(D).  One definition for Theorems 1-4, so every page that reads
    the same grid hits the same cached runs."""

    sizes: tuple[tuple[int, int, int], ...]  # (layers, width, heads)
    D: tuple[int, ...]  # training tokens of each run
    n_seeds: int
    seed: int  # the profile seed: training seeds come from :func:`training_seeds`
    vocab_size: int
    context: int
    batch_size: int
    learning_rate: float
    repeated_sizes: int = 0
    n_evals: int = 8
    eval_spacing: str = "linear"
    keep_checkpoints: bool = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any], vocab_size: int, **options) -> "StudentGrid":
        """The grid of a notebook's validated values (sizes, D, n_seeds, seed, context,
        batch_size, learning_rate, optional repeated_sizes); ``options`` set the rest."""
        return cls(tuple(tuple(s) for s in values["sizes"]), tuple(np.atleast_1d(values["D"]).tolist()),
                   values["n_seeds"], values["seed"], vocab_size, values["context"],
                   values["batch_size"], values["learning_rate"],
                   values.get("repeated_sizes", 0), **options)

    def configs(self) -> tuple[TrainConfig, ...]:
        """Every run: fresh data for each (size, D, seed) in that order, then the repeated runs."""
        specs = [StudentSpec(*size) for size in self.sizes]
        seeds = training_seeds(self.seed, self.n_seeds)
        common = dict(vocab_size=self.vocab_size, context=self.context,
                      batch_size=self.batch_size, learning_rate=self.learning_rate,
                      n_evals=self.n_evals, eval_spacing=self.eval_spacing,
                      keep_checkpoints=self.keep_checkpoints)
        fresh = [TrainConfig(spec, D=d, seed=s, **common)
                 for spec in specs for d in self.D for s in seeds]
        repeated = [TrainConfig(spec, D=max(self.D), seed=seeds[0], data_mode="repeated",
                                dataset_tokens=min(self.D), **common)
                    for spec in specs[len(specs) - self.repeated_sizes:]] if self.repeated_sizes else []
        return tuple(fresh + repeated)


@dataclass(frozen=True)
class KnownLanguage:
    """The known-entropy language of a student grid and its held-out evaluation set, with the
    exact loss eps on it (and eps's standard error)."""

    source: Any
    eval_tokens: np.ndarray
    eps: float
    eps_se: float


def known_language(values: Mapping[str, Any]) -> KnownLanguage:
    """The language and evaluation set of a notebook's values (source, source_seed,
    eval_sequences, context, seed)."""
    from .synthetic import preset_source

    source = preset_source(values["source"], values["source_seed"])
    eval_tokens, eps, eps_se = evaluation_set(source, values["eval_sequences"], values["context"],
                                              seed=values["seed"] + EVAL_SEED_OFFSET)
    return KnownLanguage(source, eval_tokens, eps, eps_se)


def student_parameters(size: Sequence[int]) -> int:
    """Non-embedding parameters of a student (layers, width, heads), without building it: per
    layer the four attention projections (4 d^2), the SwiGLU MLP of width 4 d (12 d^2) and two
    norms (2 d), plus the final norm (d)."""
    layers, width, _ = size
    return layers * (16 * width ** 2 + 2 * width) + width


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
    fingerprint = {"source": source.digest(),
                   "eval": array_digest(np.asarray(eval_tokens)), "train_version": TRAIN_VERSION,
                   "device": device, "torch": torch.__version__, "threads": threads}
    job = partial(_cached_run, source=source, eval_tokens=np.asarray(eval_tokens),
                  device=device, fingerprint=fingerprint, cache=str(cache_dir(cache)))
    if executor is None or executor == "serial":
        return [job(c) for c in tqdm(configs, disable=not progress, desc="grid")]
    # runs already stored are read here: workers are started only for runs still to train
    stored = [_stored_run(c, fingerprint, str(cache_dir(cache))) for c in configs]
    missing = [c for c, r in zip(configs, stored) if r is None]
    trained = iter(run_jobs(job, missing, executor) if missing else [])
    return [r if r is not None else next(trained) for r in stored]


def _cached_run(config: TrainConfig, source, eval_tokens: np.ndarray, device: str,
                fingerprint: dict, cache: str) -> TrainResult:
    key = {"config": asdict(config), **fingerprint}

    def compute():
        with torch_threads(fingerprint["threads"]):
            return train_student(config, source, eval_tokens, device=device)

    return cached("train", key, compute, folder=cache)


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


def _batches(config: TrainConfig, source):
    """Token batches (batch x context): fresh draws, or cycles over a fixed dataset."""
    rng = np.random.default_rng([config.seed, 1])
    if config.data_mode == "fresh":
        while True:
            yield source.sample(config.batch_size, config.context, int(rng.integers(2 ** 62)))
    n_sequences = max(config.batch_size, config.dataset_tokens // config.context)
    dataset = source.sample(n_sequences, config.context, int(rng.integers(2 ** 62)))
    while True:
        order = rng.permutation(n_sequences)
        for start in range(0, n_sequences - config.batch_size + 1, config.batch_size):
            yield dataset[order[start:start + config.batch_size]]
