"""Synthetic sources with known answers.

``iid_attention_control``: one softmax-attention layer with a fixed query over i.i.d. Gaussian
tokens, followed by a bounded Lipschitz FFN.  These are exactly the assumptions (A1)-(A4) of
Theorem 1 (with truly independent blocks), so its output variance must fall as 1/n and its
projections must become Gaussian: the control that shows the estimators can see the claim
when it holds.
"""

from __future__ import annotations

import numpy as np
import torch

from .capture import CaptureResult, Site
from .stats import MomentAccumulator


def iid_attention_control(n_samples: int, lengths, dim: int = 32, seed: int = 0,
                          n_groups: int = 16, n_projections: int = 4,
                          batch_size: int = 256) -> CaptureResult:
    """Outputs of one attention layer (site 'attention.0') and its FFN (site 'block.0').

    r~(n) = sum_{j<n} a_j V x_j with a = softmax(q . K x_j / sqrt(d)) over i.i.d. x_j ~ N(0, I)
    and a fixed query q; r(n) = W2 tanh(W1 r~(n)).  Every prefix length comes from one sequence
    through cumulative sums, as in a causal model.  n_eff = (sum e_j)^2 / sum e_j^2.
    """
    lengths = np.asarray(sorted(set(int(n) for n in lengths)))
    n_max = int(lengths[-1])
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    query = normal(dim)
    w_key, w_value = normal(dim, dim) / dim ** 0.5, normal(dim, dim) / dim ** 0.5
    w_in, w_out = normal(dim, 4 * dim) / dim ** 0.5, normal(4 * dim, dim) / (4 * dim) ** 0.5
    directions = normal(dim, n_projections)
    directions /= directions.norm(dim=0, keepdim=True)
    device = torch.device("cpu")
    sites = (Site("attention.0", "attention", 0, "synthetic.attention"),
             Site("block.0", "block", 0, "synthetic.ffn"))
    acc = {s.name: MomentAccumulator(n_groups, len(lengths), dim, device, directions) for s in sites}
    n_eff_sum = np.zeros(len(lengths))
    index = torch.as_tensor(lengths - 1)
    for start in range(0, n_samples, batch_size):
        b = min(batch_size, n_samples - start)
        x = normal(b, n_max, dim)
        scores = (x @ w_key) @ query / dim ** 0.5  # b x n_max
        e = torch.exp(scores - scores.amax(1, keepdim=True))  # stable; ratios unchanged
        attended = torch.cumsum(e[..., None] * (x @ w_value), 1) / torch.cumsum(e, 1)[..., None]
        r_att = attended[:, index]  # b x K x dim
        r_ffn = torch.tanh(r_att @ w_in) @ w_out
        n_eff_sum += (torch.cumsum(e, 1) ** 2 / torch.cumsum(e ** 2, 1))[:, index].sum(0).numpy()
        ids = torch.arange(start, start + b)
        for site, values in zip(sites, (r_att, r_ffn)):
            acc[site.name].update(values, ids % n_groups, ids, torch.arange(len(lengths)))
    n_eff = (n_eff_sum / n_samples)[None, :, None]  # layers x lengths x heads
    return CaptureResult(lengths, sites, {k: a.result() for k, a in acc.items()}, n_samples,
                         "fixed query vector", n_eff=n_eff, n_eff_no_sink=n_eff)
