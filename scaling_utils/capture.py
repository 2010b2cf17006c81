"""Activation capture: forward hooks on named sites of a causal LM, reduced on the fly.

Sites: the embeddings, each block's attention output (before the residual add), each block's
output (the residual stream) and the final norm.  For each site and each context length n in a
grid, the representation at position n-1 of every window is added to float64 grouped sums
(:class:`~scaling_utils.estimators.moments.MomentAccumulator`), so memory does not grow with the number of
windows.  In a causal model position n-1 sees exactly the first n tokens, so one forward pass
over a window of N tokens yields the sample for every n <= N at once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm  # plain text: the book has no widget support

from .estimators.moments import MomentAccumulator, Moments
from .estimators.snr import attention_concentration

SITE_KINDS = ("embeddings", "attention", "block", "final_norm")
_ATTENTION_NAMES = ("self_attn", "attn", "attention")
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_norm")


@dataclass(frozen=True)
class Site:
    """A hooked module: ``name`` like 'attention.3', its ``kind``, ``layer`` and module path."""

    name: str
    kind: str
    layer: int
    module: str


@dataclass(frozen=True)
class CaptureResult:
    """Streaming statistics of one capture run.

    ``moments[site.name]`` holds grouped sums of the representation at each length in
    ``lengths``.  With attention weights: ``n_eff`` and ``n_eff_no_sink`` (attention renormalised
    without position 0), each 1 / (mean over windows of sum_k a_k^2), the harmonic mean of the
    windows' n_eff; and ``sink_mass`` (attention on position 0, mean over windows); each of shape
    (layers, lengths, heads).  With ``position_loss``: per-group mean next-token loss at
    every context length 1..N-1, shape (groups, N-1).
    """

    lengths: np.ndarray
    sites: tuple[Site, ...]
    moments: dict[str, Moments]
    n_windows: int
    query: str
    n_eff: np.ndarray | None = None
    n_eff_no_sink: np.ndarray | None = None
    sink_mass: np.ndarray | None = None
    position_loss: np.ndarray | None = None

    def sites_of(self, kind: str) -> list[Site]:
        return [s for s in self.sites if s.kind == kind]


def find_sites(model: torch.nn.Module) -> tuple[Site, ...]:
    """The standard sites of a Hugging Face causal LM (Llama, Gemma, GPT-2, GPT-NeoX, Qwen...)."""
    names = {id(m): n for n, m in model.named_modules()}
    embed = model.get_input_embeddings()
    blocks_name, blocks = _decoder_blocks(model)
    sites = [Site("embeddings", "embeddings", -1, names[id(embed)])]
    for i, block in enumerate(blocks):
        attn = next((n for n in _ATTENTION_NAMES if hasattr(block, n)), None)
        if attn is None:
            raise ValueError(f"block {blocks_name}.{i} has no attention module named {_ATTENTION_NAMES}")
        sites.append(Site(f"attention.{i}", "attention", i, f"{blocks_name}.{i}.{attn}"))
        sites.append(Site(f"block.{i}", "block", i, f"{blocks_name}.{i}"))
    parent = blocks_name.rsplit(".", 1)[0] if "." in blocks_name else ""
    modules = dict(model.named_modules())
    for norm in _FINAL_NORM_NAMES:
        path = f"{parent}.{norm}" if parent else norm
        if path in modules:
            sites.append(Site("final_norm", "final_norm", len(blocks), path))
            break
    return tuple(sites)


def forward(model: torch.nn.Module, input_ids: torch.Tensor) -> Any:
    """One evaluation forward pass, keeping only the last position's logits (the capture and the
    bare baseline of the benchmarks call exactly this)."""
    with torch.inference_mode():
        return model(input_ids=input_ids, use_cache=False, logits_to_keep=1)


def final_representation(model: torch.nn.Module, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last layer's normalised hidden states (what the output head reads) and the logits,
    for every position (call under ``torch.inference_mode``)."""
    hidden = model.base_model(input_ids=input_ids, use_cache=False).last_hidden_state
    return hidden, model.get_output_embeddings()(hidden)


def final_representations(model: torch.nn.Module, windows: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Final representations of every position of every window (windows x length x width,
    float32 on the CPU)."""
    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            ids = torch.as_tensor(windows[start:start + batch_size], device=device)
            parts.append(model.base_model(input_ids=ids, use_cache=False).last_hidden_state.float().cpu())
    return torch.cat(parts).numpy()


def capture_statistics(model: torch.nn.Module, windows: np.ndarray, lengths: Sequence[int], *,
                       batch_size: int = 8, n_groups: int = 16, n_projections: int = 0,
                       seed: int = 0, kinds: Sequence[str] = SITE_KINDS,
                       attention_weights: bool = False, position_loss: bool = False,
                       fixed_query_token: int | None = None,
                       progress: bool = True) -> CaptureResult:
    """Run ``model`` over ``windows`` (N x T token ids) and reduce every site on the fly.

    For each n in ``lengths`` the sample is the representation at position n-1.  With
    ``fixed_query_token`` the last token is replaced by that token for every n (the first n-1
    tokens run once and cached, then one query token per n), so that only the context varies.
    ``attention_weights`` needs eager attention.
    """
    windows = np.asarray(windows)
    lengths = np.asarray(sorted(set(int(n) for n in lengths)))
    n_windows, max_len = windows.shape
    if lengths[0] < 1 or lengths[-1] > max_len:
        raise ValueError(f"lengths must lie in [1, {max_len}] (the window length), got "
                         f"{lengths[0]}..{lengths[-1]}.")
    if n_groups > n_windows:
        raise ValueError(f"n_groups ({n_groups}) exceeds the number of windows ({n_windows}); "
                         "use fewer groups or more windows.")
    if attention_weights and model.config._attn_implementation != "eager":
        raise ValueError("attention weights need eager attention: load the model with "
                         "attn_implementation='eager'.")
    if (position_loss or attention_weights) and fixed_query_token is not None:
        raise ValueError("position_loss and attention_weights are measured on the windows as "
                         "they are; run them without fixed_query_token.")
    unknown = set(kinds) - set(SITE_KINDS)
    if unknown:
        raise ValueError(f"unknown site kinds {sorted(unknown)}; choose from {SITE_KINDS}.")
    device = next(model.parameters()).device
    all_sites = find_sites(model)
    sites = tuple(s for s in all_sites if s.kind in kinds)
    if position_loss and not any(s.kind == "final_norm" for s in all_sites):
        raise ValueError("position_loss needs a final norm site, which this model lacks.")
    dim = model.get_input_embeddings().embedding_dim
    generator = torch.Generator().manual_seed(seed)
    directions = None
    if n_projections:
        directions = torch.randn(dim, n_projections, generator=generator, dtype=torch.float64)
        directions /= directions.norm(dim=0, keepdim=True)
    acc = {s.name: MomentAccumulator(n_groups, len(lengths), dim, device, directions) for s in sites}
    attn = _AttentionStats(model.config.num_hidden_layers) if attention_weights else None
    loss = _PositionLoss(n_groups, max_len, device) if position_loss else None
    state: dict[str, torch.Tensor] = {}

    def on_output(site: Site, output: Any) -> None:
        if not state["record"]:  # the shared prefix of the fixed-query passes
            return
        hidden = output[0] if isinstance(output, tuple) else output
        if site.name in acc:
            acc[site.name].update(hidden[:, state["positions"]], state["groups"], state["windows"],
                                  state["length_index"])
        if attn is not None and site.kind == "attention":
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError(f"{site.module} returned no attention weights; use eager attention.")
            attn.update(site.layer, weights[:, :, state["positions"], :])
        if loss is not None and site.kind == "final_norm":
            loss.update(model, hidden, state["ids"], state["groups"])

    hooked = [s for s in all_sites if s.name in acc or (attn and s.kind == "attention")
              or (loss and s.kind == "final_norm")]
    starts = range(0, n_windows, batch_size)
    bar = tqdm(total=len(starts), desc="capture", disable=not progress, leave=False)
    with _hooks(model, hooked, on_output):
        for start in starts:
            ids = torch.as_tensor(windows[start:start + batch_size], device=device)
            window_ids = torch.arange(start, start + len(ids), device=device)
            state.update(ids=ids, windows=window_ids, groups=window_ids % n_groups, record=True)
            if fixed_query_token is None:  # one pass reads every n
                state.update(positions=torch.as_tensor(lengths - 1, device=device),
                             length_index=torch.arange(len(lengths), device=device))
                forward(model, ids)
            else:
                _fixed_query_passes(model, ids, lengths, fixed_query_token, state)
            bar.update()
    bar.close()
    query = ("last token of each window" if fixed_query_token is None
             else f"fixed final token id {fixed_query_token}")
    return CaptureResult(
        lengths, sites, {name: a.result() for name, a in acc.items()}, n_windows, query,
        *(attn.result() if attn else (None, None, None)),
        loss.result() if loss else None,
    )


def _fixed_query_passes(model, ids: torch.Tensor, lengths: np.ndarray, token: int,
                        state: dict) -> None:
    """For every n, the window's first n-1 tokens followed by ``token``, read at its last
    position: the prefix is run once, unread, and each query attends to its first n-1 keys
    (the cache cropped to them, longest first), as a pass over the n tokens would."""
    with torch.inference_mode():
        state["record"] = False
        if lengths[-1] > 1:
            cache = model(input_ids=ids[:, :lengths[-1] - 1], use_cache=True,
                          logits_to_keep=1).past_key_values
        else:  # nothing before the query (imported here: transformers is loaded by now)
            from transformers import DynamicCache
            cache = DynamicCache(config=model.config)
        state.update(record=True, positions=torch.zeros(1, dtype=torch.long, device=ids.device))
        query = torch.full((len(ids), 1), token, dtype=ids.dtype, device=ids.device)
        for k in range(len(lengths) - 1, -1, -1):
            extra = cache.get_seq_length() - (int(lengths[k]) - 1)
            if extra > 0:
                cache.crop(-extra)  # removes that many tokens from the end
            state["length_index"] = torch.tensor([k], device=ids.device)
            model(input_ids=query, past_key_values=cache, use_cache=True, logits_to_keep=1)


class _AttentionStats:
    """Running means over windows of sum_k a_k^2 (with and without position 0) and of the
    attention on position 0; n_eff is the inverse of the mean (the harmonic mean over windows,
    because the variances sigma^2 sum_k a_k^2 of different windows add, not their n_eff)."""

    def __init__(self, n_layers: int):
        self.sums: list[np.ndarray | float] = [0.0] * n_layers
        self.count = np.zeros(n_layers)

    def update(self, layer: int, weights: torch.Tensor) -> None:
        # weights: batch x heads x k x T, the rows of the query positions (zero past the mask)
        w = weights.detach().to(torch.float64)
        rest = w[..., 1:] / w[..., 1:].sum(-1, keepdim=True).clamp_min(1e-300)
        stats = torch.stack([attention_concentration(w), attention_concentration(rest), w[..., 0]])
        self.sums[layer] = self.sums[layer] + stats.sum(1).transpose(1, 2).cpu().numpy()  # 3 x k x H
        self.count[layer] += w.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        means = np.stack(self.sums, 1) / self.count[None, :, None, None]  # 3 x layers x k x H
        return 1.0 / means[0], 1.0 / means[1], means[2]


class _PositionLoss:
    """Per-group sums of the next-token loss at every context length, via the output head in
    chunks so that the full batch x length x vocabulary logits never exist at once."""

    def __init__(self, n_groups: int, max_len: int, device: torch.device):
        self.total = torch.zeros(n_groups, max_len - 1, dtype=torch.float64, device=device)
        self.count = torch.zeros(n_groups, dtype=torch.float64, device=device)

    def update(self, model, hidden: torch.Tensor, ids: torch.Tensor, groups: torch.Tensor) -> None:
        head = model.get_output_embeddings()
        cap = getattr(model.config, "final_logit_softcapping", None)
        losses = []
        for start in range(0, hidden.shape[1] - 1, 128):
            stop = min(start + 128, hidden.shape[1] - 1)
            logits = head(hidden[:, start:stop]).float()
            if cap:
                logits = torch.tanh(logits / cap) * cap
            target = ids[:, start + 1:stop + 1]
            losses.append(torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), target, reduction="none"))
        self.total.index_add_(0, groups, torch.cat(losses, 1).to(torch.float64))
        self.count.index_add_(0, groups, torch.ones_like(groups, dtype=torch.float64))

    def result(self) -> np.ndarray:
        return (self.total / self.count[:, None]).cpu().numpy()


@contextlib.contextmanager
def _hooks(model: torch.nn.Module, sites: Sequence[Site], on_output) -> Iterator[None]:
    modules = dict(model.named_modules())
    handles = [modules[s.module].register_forward_hook(
        lambda _m, _i, out, s=s: on_output(s, out)) for s in sites]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _decoder_blocks(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    n_layers = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return name, module
    raise ValueError(f"no list of {n_layers} decoder blocks found in {type(model).__name__}")


def forward_memory_bytes(config, batch_size: int, length: int, bytes_per_value: int = 4,
                         eager_attention: bool = True, chunk: int = 128) -> int:
    """An upper estimate of the peak memory of one capture pass (no gradients): the weights, a
    few copies of the residual stream and of the MLP's inner activations, the attention scores
    of one layer (``batch x heads x length^2``, three copies when eager: scores, softmax, the
    returned weights) and one chunk of output logits in float32 (the position loss)."""
    d, heads = config.hidden_size, config.num_attention_heads
    inner = getattr(config, "intermediate_size", 4 * d)
    tokens = batch_size * length
    weights = sum(p for p in _parameter_counts(config)) * bytes_per_value
    stream = 6 * tokens * d * bytes_per_value
    mlp = 3 * tokens * inner * bytes_per_value
    scores = (3 if eager_attention else 1) * batch_size * heads * length * length * bytes_per_value
    logits = 2 * batch_size * chunk * config.vocab_size * 4
    return int(weights + stream + mlp + scores + logits)


def _parameter_counts(config):
    """Parameters of a decoder-only transformer from its config (embeddings, layers, head)."""
    d, inner = config.hidden_size, getattr(config, "intermediate_size", 4 * config.hidden_size)
    per_layer = 4 * d * d + 3 * d * inner + 2 * d
    head = 0 if getattr(config, "tie_word_embeddings", True) else config.vocab_size * d
    return config.vocab_size * d, config.num_hidden_layers * per_layer, head
