"""Named parameter sets (`smoke`, `cpu`, `gpu`) for every notebook, and their validation.

papermill only warns about an unknown ``-p`` name and never checks types, so each notebook's
first code cell calls :func:`resolve_parameters`, which fails with a message naming the
problem and the fix.  The table of parameters in the book is generated from :data:`NOTEBOOKS`,
so documentation and behaviour cannot drift apart.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from .cache import check_writable
from .parameters import Parameter, ParameterError
from .verdicts import MIN_REPLICATES

# Theorem 3's rules read their exponents' intervals from 80 replicates
# (`chapters.t3_snr.rules.MIN_REPLICATES`; tests/test_profiles.py holds the two equal).  Not
# imported: that would load the chapter, and torch, on every page that validates parameters.
T3_MIN_REPLICATES = 80
# The students' learning-rate schedules (`train.SCHEDULES`) and the matmul precisions
# (`models.PRECISIONS`), held equal by tests/test_profiles.py: importing either module loads
# torch, which the pages that only read results never need.
SCHEDULES = ("cosine", "wsd")
PRECISIONS = ("float32", "tf32", "bfloat16")
from .executor import EXECUTOR_KINDS

PROFILE_NAMES = ("smoke", "cpu", "gpu")
DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class NotebookConfig:
    """Validated parameters of one notebook run; attribute access reads ``values``."""

    notebook: str
    profile: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "values")
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def variant(self) -> str:
        """"" when every value that shapes the results is the profile's own, else a short hash of
        those values: results stored under a variant (a sweep, a changed parameter) never
        replace the profile's, which the pages relating the theorems read."""
        from .cache import config_hash

        own = profile_values(self.notebook, self.profile)
        shaping = {k: v for k, v in self.values.items() if k not in _PLACEMENT}
        if all(own.get(k) == v for k, v in shaping.items()):
            return ""
        return config_hash(shaping)


# Where a computation runs, not what it computes: not part of a result's variant.
_PLACEMENT = ("device", "executor")


_COMMON = (
    Parameter("profile", str, "named parameter set filling every value left as None",
              "smoke", "cpu", "gpu", choices=PROFILE_NAMES),
    Parameter("seed", int, "seed for every random choice (windows, directions, bootstrap)",
              0, 0, 0, minimum=0),
    Parameter("device", str, "torch device; None picks cuda, then mps, then cpu",
              None, None, None, optional=True),
)

_EXECUTOR = Parameter("executor", str, "where training runs go: serial, processes:N, "
                      "dask[:ADDRESS] or slurm[:PARTITION] (see scaling_utils.executor)",
                      None, None, None, optional=True, prefixes=EXECUTOR_KINDS)

# The student grid of Theorem 2; Theorem 3 reads the same runs (same values, same cache entries).
# On the cpu profile the runs go to two worker processes of one thread each: students this small
# leave a second thread of one process mostly idle, and CPU runs are keyed by thread count, so
# both chapters read back the same runs.
_STUDENT_GRID = (replace(_EXECUTOR, cpu="processes:2"),
        Parameter("source", str, "preset of the known-entropy language (scaling_utils.synthetic.PRESETS)",
                  "tiny", "sparse128", "sparse128", choices=("tiny", "sparse128")),
        Parameter("source_seed", int, "seed of the random source", 1, 0, 0, minimum=0),
        Parameter("context", int, "student context length (tokens)", 16, 64, 64, minimum=4),
        Parameter("sizes", tuple, "student sizes as (layers, width, heads) triples",
                  ((1, 8, 2), (1, 16, 2), (2, 32, 4)),
                  ((1, 4, 1), (1, 8, 2), (1, 16, 2), (2, 32, 4)),
                  ((1, 8, 2), (1, 16, 2), (2, 32, 4), (2, 64, 4), (2, 128, 4), (4, 256, 8)),
                  items="size"),
        Parameter("D", tuple, "training tokens of the grid (each D a run; under 'wsd' the runs of "
                  "one size and seed branch off one trunk)",
                  (2048, 4096, 16384), (16384, 65536, 262144, 1048576, 2097152),
                  (65536, 262144, 1048576, 4194304, 16777216), items="count"),
        Parameter("n_seeds", int, "training seeds per (P, D) cell", 2, 3, 3, minimum=1),
        Parameter("schedule", str, "learning-rate schedule: 'wsd' (warmup, constant, decay over "
                  "the last 20 %: the runs of one size and seed share every step before their "
                  "decay) or 'cosine' (each D a run of its own)", "wsd", "wsd", "wsd",
                  choices=SCHEDULES),
        Parameter("batch_size", int, "sequences per step", 16, 8, 64, minimum=1),
        Parameter("learning_rate", float, "peak AdamW learning rate", 3e-3, 1e-2, 2e-3,
                  minimum=1e-6, maximum=1.0),
        Parameter("eval_sequences", int, "held-out sequences for every evaluation", 64, 512, 2048,
                  minimum=8),
)

# The pretrained model and its text, read by Theorems 1 and 3.
_PRETRAINED = (
    Parameter("model", str, "Hugging Face name or local folder (None: the offline SmolLM2-135M)",
              None, None, None, optional=True),
    Parameter("corpus", str, "'wikipedia', 'shakespeare', a local text file, or hf:NAME",
              "wikipedia", "wikipedia", "wikipedia"),
)

# The pages that set stored results side by side refuse results of different commits unless asked.
_ALLOW_MIXED = Parameter("allow_mixed", bool, "read stored results written by different commits",
                         False, False, False)

NOTEBOOKS: Mapping[str, tuple[Parameter, ...]] = MappingProxyType({
    "theorem1_clt": _COMMON + (
        *_PRETRAINED,
        Parameter("n_windows", int, "random context windows drawn from the corpus (disjoint: "
                  "the offline Wikipedia extract holds 346 of 2,048 tokens)",
                  16, 48, 320, minimum=8),
        Parameter("max_length", int, "longest context n (tokens); one pass serves every n",
                  32, 256, 2048, minimum=4),
        Parameter("min_length", int, "shortest context n of the geometric grid",
                  4, 4, 4, minimum=2),
        Parameter("fit_from", int, "shortest n used in the power-law fits (the claim is a limit)",
                  8, 32, 64, minimum=1),
        Parameter("batch_size", int, "windows per forward pass",
                  4, 8, 32, minimum=1),
        Parameter("n_groups", int, "groups of windows, each left out in turn by the jackknife "
                  "of the exponents' intervals (fewer than about 8 under-cover)", 8, 16, 32,
                  minimum=8),
        Parameter("n_boot", int, "bootstrap replicates for the position-loss fit",
                  50, 400, 1000, minimum=MIN_REPLICATES),
        Parameter("n_projections", int, "random directions tested for Gaussianity",
                  4, 8, 16, minimum=1),
        Parameter("exclude_top_dims", int,
                  "drop this many massive-activation dimensions in the 'without' variance",
                  2, 2, 2, minimum=0),
        Parameter("fixed_query", bool, "also measure with one fixed final token (extra passes)",
                  True, True, True),
        Parameter("random_twin_control", bool, "also measure the random-initialised twin on i.i.d. tokens",
                  True, True, True),
        Parameter("text_design", bool, "also measure the trained model and its random twin on "
                  "real text, shuffled text and i.i.d. tokens, and the trained model with a "
                  "fixed first token (6 more passes)", True, True, True),
        Parameter("design_windows", int, "windows of each new pass of the text design (the "
                  "cells the chapter measures anyway keep n_windows)", 16, 16, 160, minimum=16),
        Parameter("student_family", bool, "also measure the Theorem 2 students (largest D, one "
                  "seed) of this profile: a model family grown in P, offline", True, False, True),
        Parameter("precision", str, "forward precision (float32, tf32, bfloat16); a reduced one is "
                  "used only if a float32 check on a quarter of the windows leaves the exponents "
                  "unchanged", "float32", "float32", "tf32", choices=PRECISIONS),
        Parameter("synthetic_samples", int, "samples per n for the i.i.d. attention control",
                  200, 2000, 4000, minimum=20),
        Parameter("synthetic_max_length", int, "longest context of the i.i.d. attention control",
                  256, 1024, 4096, minimum=8),
        Parameter("synthetic_dim", int, "width of the i.i.d. attention control",
                  16, 32, 64, minimum=2),
        Parameter("world_sets", int, "simulated data sets per world for the rules' "
                  "false-verdict rates (0: skip)", 40, 200, 400, minimum=0),
    ),
    "theorem2_bias_variance": _COMMON + _STUDENT_GRID + (
        Parameter("repeated_sizes", int,
                  "how many of the largest sizes also train on a repeated dataset of min(D)",
                  1, 1, 3, minimum=0),
        Parameter("n_boot", int, "bootstrap replicates for the scaling-law CIs",
                  MIN_REPLICATES, 100, 400, minimum=MIN_REPLICATES),
    ),
    "theorem3_snr": _COMMON + _STUDENT_GRID + (
        Parameter("snr_sequences", int, "held-out sequences whose representations give each SNR",
                  32, 256, 1024, minimum=8),
        Parameter("min_position", int, "first position used (earlier ones see too little context)",
                  4, 8, 8, minimum=1),
        Parameter("n_boot", int, "bootstrap replicates for SNR and exponent CIs",
                  T3_MIN_REPLICATES, 200, 400, minimum=T3_MIN_REPLICATES),
        *_PRETRAINED,
        Parameter("n_windows", int, "context windows of the pretrained model for SNR against n",
                  8, 48, 320, minimum=4),
        Parameter("max_length", int, "longest context n for SNR against n", 32, 256, 2048, minimum=8),
        Parameter("snr_classes", int, "most frequent next tokens used as classes", 8, 16, 32,
                  minimum=2),
    ),
    "theorem4_emergence": _COMMON + (
        # Nine small runs train faster as two single-threaded processes than as one process
        # with two threads; CPU runs are keyed by the thread count, so results stay fixed.
        replace(_EXECUTOR, cpu="processes:2"),
        Parameter("alphabet", int, "symbols of the capability tasks", 8, 16, 16, minimum=4),
        Parameter("copy_length", int, "length of the segment to copy", 4, 6, 8, minimum=1),
        Parameter("recall_pairs", int, "key-value pairs shown before the query", 4, 6, 8, minimum=1),
        Parameter("modulus", int, "modulus of the addition task", 5, 7, 11, minimum=2),
        Parameter("sizes", tuple, "student sizes as (layers, width, heads) triples",
                  ((1, 16, 2), (2, 16, 2)), ((1, 32, 4), (2, 32, 4), (2, 64, 4)),
                  ((1, 32, 4), (2, 32, 4), (2, 64, 4), (2, 128, 4), (4, 256, 8)), items="size"),
        Parameter("D", int, "training tokens of each run; capabilities are read at "
                  "checkpoints along it", 65536, 1200000, 20000000, minimum=1024),
        Parameter("n_checkpoints", int, "checkpoints, evenly spaced in log D from the 16th "
                  "step (train.TrainConfig.log_first_step)", 6, 14, 20, minimum=4),
        Parameter("n_seeds", int, "training seeds per size (the intervals resample runs)", 2, 3, 3,
                  minimum=1),
        Parameter("batch_size", int, "sequences per step", 32, 64, 128, minimum=1),
        Parameter("learning_rate", float, "peak AdamW learning rate", 3e-3, 3e-3, 2e-3,
                  minimum=1e-6, maximum=1.0),
        Parameter("n_examples", int, "fresh test instances per task and checkpoint (each run its "
                  "own)", 64, 512, 2048, minimum=8),
        Parameter("snr_site", str, "where the SNR is read: the last block's MLP input, the last "
                  "block's input, or the final norm (tied to success by construction)",
                  "last_mlp_input", "last_mlp_input", "last_mlp_input",
                  choices=("last_mlp_input", "last_block_input", "final")),
        Parameter("n_boot", int, "bootstrap replicates over runs for the threshold CIs and the "
                  "collapse win shares", MIN_REPLICATES, 200, 400, minimum=MIN_REPLICATES),
        Parameter("level", float, "success level that counts as 'crossed' for resources", 0.5,
                  0.5, 0.5, minimum=0.01, maximum=0.99),
    ),
    "integration": _COMMON + (_ALLOW_MIXED,),
    "overview": _COMMON + (_ALLOW_MIXED,),
    "trust": _COMMON + (
        Parameter("n_sets", int, "simulated data sets per world and rule", 10, 200, 400,
                  minimum=10),
        # the worlds are independent jobs: two worker processes on the two-core cpu machine
        replace(_EXECUTOR, help="where the simulated worlds run: serial, processes:N, "
                "dask[:ADDRESS] or slurm[:PARTITION] (see scaling_utils.executor)",
                cpu="processes:2"),
    ),
    "ceiling": _COMMON + (_ALLOW_MIXED,),
    "public_evidence": _COMMON + (_ALLOW_MIXED,
        Parameter("published_data", str,
                  "path of Epoch AI's digitised Chinchilla CSV to refit (not shipped)",
                  None, None, None, optional=True),
        Parameter("n_boot", int, "bootstrap replicates for the refit's CIs",
                  MIN_REPLICATES, 100, 400, minimum=MIN_REPLICATES),
    ),
    "instructors": _COMMON + (
        Parameter("times", str, "JSON of every notebook's run time alone, recorded by "
                  "`benchmarks/run.py --teaching`", "../teaching/times.json",
                  "../teaching/times.json", "../teaching/times.json"),
        Parameter("repository", str, "folder holding notebooks/, _toc.yml and teaching/checks/",
                  "..", "..", ".."),
    ),
    "reproducibility": _COMMON + (
        Parameter("build_log", str, "JSON run-time log written by scripts/build_book.py",
                  None, None, None, optional=True),
        Parameter("benchmarks", str, "JSON table written by benchmarks/run.py (`make benchmark`)",
                  "../benchmarks/results/benchmarks.json", "../benchmarks/results/benchmarks.json",
                  "../benchmarks/results/benchmarks.json"),
    ),
})


def profile_values(notebook: str, profile: str) -> dict[str, Any]:
    """The parameter values of ``profile`` for ``notebook``."""
    specs = _specs(notebook)
    if profile not in PROFILE_NAMES:
        raise ParameterError(f"unknown profile {profile!r}; choose one of {list(PROFILE_NAMES)}.")
    return {p.name: p.profile_value(profile) for p in specs}


def student_grid_values(profile: str, seed: int) -> dict[str, Any]:
    """The shared student grid's values at ``profile`` and profile ``seed`` (Theorem 1 reads the
    students that Theorems 2 and 3 train, from the same cache entries)."""
    return {**{p.name: p.profile_value(profile) for p in _STUDENT_GRID}, "seed": seed}


def check_names(notebook: str, names) -> None:
    """Only declared parameter names may reach a notebook (papermill writes each name into the
    parameters cell as code): an unknown one is an error, with the closest valid name."""
    declared = sorted(p.name for p in _specs(notebook))
    unknown = sorted(set(names) - set(declared))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, declared, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParameterError(f"unknown parameter(s) for notebook {notebook!r}: "
                             f"{', '.join(hints)}. Valid parameters: {', '.join(declared)}.")


def resolve_parameters(notebook: str, namespace: Mapping[str, Any],
                       baseline: set[str] | frozenset[str] = frozenset()) -> NotebookConfig:
    """Validate a notebook's parameters and fill those left as ``None`` from the profile.

    ``namespace`` is the notebook's ``globals()``; names in ``baseline`` (those defined before
    the parameters cell) and private names are ignored, so any other name is a parameter and an
    unknown one (a typo in ``papermill -p``) is an error, with the closest valid name suggested.
    """
    specs = {p.name: p for p in _specs(notebook)}
    given = {k: v for k, v in namespace.items()
             if k not in baseline and not k.startswith("_") and k not in _IPYTHON_NAMES}
    check_names(notebook, given)
    profile = specs["profile"].check(given.get("profile") or DEFAULT_PROFILE)
    values = {}
    for name, spec in specs.items():
        value = given.get(name)
        values[name] = spec.check(spec.profile_value(profile) if value is None else value)
    _check_together(notebook, values)
    check_writable()  # before the first result is computed, not after it is lost
    return NotebookConfig(notebook, profile, MappingProxyType(values))


def _check_together(notebook: str, values: Mapping[str, Any]) -> None:
    """Checks that involve several values or the files they name, so that a run that cannot
    finish fails in the first cell: the corpus is text, and a student grid has enough points
    for every fit it feeds."""
    from .estimators.chinchilla import COUPLED

    if "corpus" in values:
        from .data import CorpusError, check_corpus
        try:
            check_corpus(values["corpus"])
        except (CorpusError, OSError) as err:
            raise ParameterError(f"parameter 'corpus': {err}") from err
    for name in ("device", "model"):
        # a device of None picks one: nothing to check (and no torch to load, on a page that
        # only reads results); the model's None is the offline default, which must be there
        if name in values and (name == "model" or values[name] is not None):
            from . import models
            check = models.check_device if name == "device" else models.check_model_reachable
            try:
                check(values[name])
            except ValueError as err:
                raise ParameterError(f"parameter {name!r}: {err}") from err
    if "sizes" in values and isinstance(values.get("D"), tuple):  # the Theorem 2 grid
        sizes, D, n_seeds = values["sizes"], values["D"], values["n_seeds"]
        if len(sizes) < 2 or len(D) < 2:
            raise ParameterError(
                f"the student grid needs at least 2 sizes and 2 token counts to fit exponents in "
                f"P and D, got sizes={list(sizes)} and D={list(D)}.")
        points = len(sizes) * len(D) * n_seeds
        if points < len(COUPLED):
            raise ParameterError(
                f"the student grid has {points} runs (sizes x D x n_seeds) but the largest "
                f"scaling law fitted to it has {len(COUPLED)} parameters: add sizes, token "
                "counts or seeds.")
        batch = values["batch_size"] * values["context"]
        if min(D) < batch:
            raise ParameterError(
                f"parameter 'D': {min(D)} is less than one batch (batch_size x "
                f"context = {batch} tokens); use larger token counts or a smaller batch_size.")


def parameter_table(notebook: str) -> list[dict[str, Any]]:
    """Rows (name, type, meaning, value per profile) describing a notebook's parameters."""
    return [
        {"name": p.name, "type": p.kind.__name__ + (" or None" if p.optional else ""),
         "meaning": p.help, **{prof: p.profile_value(prof) for prof in PROFILE_NAMES}}
        for p in _specs(notebook)
    ]


PARAMETERS_CELL_HEADER = ('# None means "take the value of the profile" (default cpu); '
                          "`python -m scaling_utils params NOTEBOOK` lists every value.")


def parameters_cell(notebook: str) -> str:
    """The body of a notebook's parameters cell: every parameter as ``None`` with its type and a
    one-line help comment (meaning, cpu value), which ``papermill --help-notebook`` shows.  A test
    holds each notebook's cell to this text, so the cell and :data:`NOTEBOOKS` cannot drift."""
    lines = [PARAMETERS_CELL_HEADER]
    for p in _specs(notebook):
        lines.append(f"{p.name}: {p.kind.__name__} = None  # {p.help} "
                     f"({'optional; ' if p.optional else ''}cpu: {p.cpu!r})")
    return "\n".join(lines)


def _specs(notebook: str) -> tuple[Parameter, ...]:
    if notebook not in NOTEBOOKS:
        raise ParameterError(f"unknown notebook {notebook!r}; known: {sorted(NOTEBOOKS)}.")
    return NOTEBOOKS[notebook]


_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})
