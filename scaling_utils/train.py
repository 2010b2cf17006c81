"""Small causal transformers ("students") trained on a synthetic source with a plain torch loop.

Students are transformers' own Llama classes built from a size spec, so the capture code that
serves pretrained models serves them unchanged.  :mod:`.runs` trains many of them, each cached
under a hash of its configuration.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm  # plain text: the book has no widget support

from .cache import array_digest, config_hash
from .models import pick_device, random_llama

DATA_MODES = ("fresh", "repeated")
EVAL_SPACINGS = ("linear", "log")
SCHEDULES = ("cosine", "wsd")
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
    # with "log": the first evaluation's step; the steps before it teach a student nothing a
    # capability could show, so checkpoints there would be spent where nothing changes
    log_first_step: int = 16
    keep_checkpoints: bool = False  # keep the weights at every evaluation
    # "cosine": warmup, then cosine decay to 10 %.  "wsd" (warmup-stable-decay, Hägele et al.
    # 2024): warmup, a constant rate, then a (1 - sqrt) decay to zero over the last
    # decay_fraction of the steps, so that runs of every D share the steps before their decay.
    schedule: str = "cosine"
    decay_fraction: float = 0.2
    warmup_steps: int | None = None  # None: warmup_fraction of the run's own steps

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}.")
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

    @property
    def warmup(self) -> int:
        """Steps of the linear warmup."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return max(1, int(self.warmup_fraction * self.steps))

    @property
    def decay_start(self) -> int:
        """The first step of the decay under "wsd" (the steps before it are shared by runs of
        every D); the run's end under "cosine", which has no shared steps."""
        if self.schedule == "cosine":
            return self.steps
        return self.steps - max(1, round(self.decay_fraction * self.steps))

    def learning_rate_factor(self, step: int) -> float:
        """The peak learning rate's multiplier at ``step`` (counted from 0)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "cosine":
            progress = (step - self.warmup) / max(1, self.steps - self.warmup)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        if step < self.decay_start:
            return 1.0
        return 1.0 - math.sqrt((step - self.decay_start) / (self.steps - self.decay_start))

    def eval_steps(self) -> list[int]:
        """Steps after which the held-out loss is measured (the last step always)."""
        if self.eval_spacing == "log":
            points = np.geomspace(min(self.log_first_step, self.steps), self.steps, self.n_evals)
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
    """AdamW with the config's schedule (:meth:`TrainConfig.learning_rate_factor`), gradient
    clipping, and the held-out loss measured at :meth:`TrainConfig.eval_steps`.  ``source`` is
    anything with ``sample(n_sequences, length, seed)`` (an HMMSource, a TaskSuite)."""
    return train_budgets([config], source, eval_tokens, device, progress)[0]


def shared_trunk(config: TrainConfig) -> dict:
    """What runs must share to be trained as branches of one trunk: everything but D (and only
    fresh-data runs under "wsd"; any other run is its own trunk)."""
    if config.schedule != "wsd" or config.data_mode != "fresh":
        return asdict(config)
    return {k: v for k, v in asdict(config).items() if k != "D"}


def train_budgets(configs: Sequence[TrainConfig], source, eval_tokens: np.ndarray,
                  device: str | torch.device | None = None,
                  progress: bool = False) -> list[TrainResult]:
    """Runs that differ only in D, trained as one: under "wsd" the steps before a run's decay
    are the same for every D, so one trunk is trained to the largest D and each run's decay
    is a branch off it (Hägele et al. 2024).  Each result is that of training its config
    alone, bit for bit (the tests check it); a run's ``seconds`` are its trunk's up to its
    branch plus its branch's."""
    configs = list(configs)
    if len({config_hash(shared_trunk(c)) for c in configs}) > 1:
        raise ValueError("train_budgets trains runs that differ only in D under the 'wsd' "
                         "schedule on fresh data; train other runs one by one.")
    device = pick_device(device)
    first = configs[0]
    torch.manual_seed(first.seed)
    model = build_student(first.spec, first.vocab_size, first.context, first.seed).to(device)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": first.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=first.learning_rate, betas=(0.9, 0.95))
    trunk = _Run(model, optimizer, _Batches(first, source))
    curves = {i: [] for i in range(len(configs))}  # per run: (tokens, loss, checkpoint)
    order = sorted(range(len(configs)), key=lambda i: configs[i].D)
    results, position, trunk_seconds = {}, 0, 0.0
    bar = tqdm(total=max(c.steps for c in configs), disable=not progress, leave=False,
               desc="train")
    for n, i in enumerate(order):
        config = configs[i]
        waiting = order[n:]  # runs whose steps up to this branch are the trunk's
        trunk_seconds += trunk.advance(config, position, config.decay_start, source, eval_tokens,
                                       {j: configs[j] for j in waiting}, curves, bar)
        position = config.decay_start
        branch = trunk if n == len(order) - 1 else copy.deepcopy(trunk)
        seconds = branch.advance(config, position, config.steps, source, eval_tokens,
                                 {i: config}, curves, bar)
        tokens, losses, checkpoints = zip(*curves[i])
        results[i] = TrainResult(config, non_embedding_parameters(branch.model), np.array(tokens),
                                 np.array(losses), trunk_seconds + seconds,
                                 _cpu_state(branch.model),
                                 tuple(checkpoints) if config.keep_checkpoints else ())
    bar.close()
    return [results[i] for i in range(len(configs))]


@dataclass
class _Run:
    """A student in training: its model, optimizer and batch stream (copied whole at a branch)."""

    model: Any
    optimizer: Any
    batches: "_Batches"

    def advance(self, config: TrainConfig, start: int, stop: int, source, eval_tokens,
                evaluated: dict, curves: dict, bar) -> float:
        """Train steps ``start`` to ``stop`` of ``config``'s schedule, evaluating wherever a
        run in ``evaluated`` (index: config) asks; returns the seconds spent."""
        device = next(self.model.parameters()).device
        wanted = {j: set(c.eval_steps()) for j, c in evaluated.items()}
        begin = time.perf_counter()
        for step in range(start, stop):
            for group in self.optimizer.param_groups:
                group["lr"] = config.learning_rate * config.learning_rate_factor(step)
            ids = torch.as_tensor(self.batches.next(source), device=device)
            loss = self.model(input_ids=ids, labels=ids).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            bar.update(1)
            askers = [j for j, steps in wanted.items() if step + 1 in steps]
            if askers:
                held_out = evaluate(self.model, eval_tokens)
                state = (_cpu_state(self.model)
                         if any(evaluated[j].keep_checkpoints for j in askers) else None)
                for j in askers:
                    curves[j].append(((step + 1) * config.batch_size * config.context,
                                      held_out, state))
        return time.perf_counter() - begin


class _Batches:
    """A run's token batches (batch x context): fresh draws, or cycles over a fixed dataset.
    Its state is a generator and a queue, so a copy continues the stream where it was copied."""

    def __init__(self, config: TrainConfig, source):
        self.config, self.rng, self.queue = config, np.random.default_rng([config.seed, 1]), []
        self.dataset = None
        if config.data_mode == "repeated":
            n_sequences = max(config.batch_size, config.dataset_tokens // config.context)
            self.dataset = source.sample(n_sequences, config.context,
                                         int(self.rng.integers(2 ** 62)))

    def next(self, source) -> np.ndarray:
        c = self.config
        if self.dataset is None:
            return source.sample(c.batch_size, c.context, int(self.rng.integers(2 ** 62)))
        if not self.queue:
            n_sequences = len(self.dataset)
            order = self.rng.permutation(n_sequences)
            self.queue = [order[start:start + c.batch_size]
                          for start in range(0, n_sequences - c.batch_size + 1, c.batch_size)]
        return self.dataset[self.queue.pop(0)]


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
    min(D) repeated up to max(D).  Under the "wsd" schedule the runs of one size and seed that
    differ in D share one warmup and train as branches of one trunk (:func:`train_budgets`).
    One definition for Theorems 1-4, so every page that reads the same grid hits the same
    cached runs (:func:`~.runs.run_grid`)."""

    sizes: tuple[tuple[int, int, int], ...]  # (layers, width, heads)
    D: tuple[int, ...]  # training tokens of each run
    n_seeds: int
    seed: int  # the profile seed: training seeds come from :func:`training_seeds`
    vocab_size: int
    context: int
    batch_size: int
    learning_rate: float
    repeated_sizes: int = 0
    schedule: str = "cosine"
    n_evals: int = 1  # the grid's readers use the final loss only
    eval_spacing: str = "linear"
    keep_checkpoints: bool = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any], vocab_size: int, **options) -> "StudentGrid":
        """The grid of a notebook's validated values (sizes, D, n_seeds, seed, context,
        batch_size, learning_rate, optional repeated_sizes); ``options`` set the rest."""
        options = {"schedule": values.get("schedule", "cosine"), **options}
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
                      keep_checkpoints=self.keep_checkpoints, schedule=self.schedule)
        if self.schedule == "wsd":  # one warmup for every D: that of the shortest run
            shortest = TrainConfig(specs[0], D=min(self.D), **common)
            common["warmup_steps"] = shortest.warmup
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
