"""Streaming moments of hidden representations: per-position sums over windows, the variance
across windows of each group, and the coordinates with massive activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

@dataclass(frozen=True)
class Moments:
    """Per-group sums of vectors observed at K context lengths.

    ``count[g, k]`` windows of group g contributed at length index k; ``total[g, k]`` and
    ``total_sq[g, k]`` are their float64 sums and sums of squares per coordinate.
    ``projections`` (windows x K x m) keeps the vectors projected on m fixed unit directions,
    for normality tests; ``window_group`` gives each row's group.
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    projections: np.ndarray | None = None
    window_group: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """Mean vector per length index, shape (K, D)."""
        return self.total.sum(0) / self.count.sum(0)[:, None]


class MomentAccumulator:
    """Accumulates :class:`Moments` batch by batch on any torch device, in float64.

    Memory is (groups x lengths x width), independent of the number of windows (apart from
    the optional m-dimensional projections kept for normality tests).
    """

    def __init__(self, n_groups: int, n_lengths: int, dim: int, device: torch.device,
                 directions: torch.Tensor | None = None):
        shape = (n_groups, n_lengths, dim)
        if device.type == "mps":  # MPS has no float64: reduce on the CPU instead
            device = torch.device("cpu")
        self.count = torch.zeros(n_groups, n_lengths, dtype=torch.float64, device=device)
        self.total = torch.zeros(shape, dtype=torch.float64, device=device)
        self.total_sq = torch.zeros(shape, dtype=torch.float64, device=device)
        self.directions = None if directions is None else directions.to(device, torch.float64)
        self._projections: dict[int, dict[int, np.ndarray]] = {}
        self._window_group: dict[int, int] = {}

    def update(self, values: torch.Tensor, groups: torch.Tensor, windows: torch.Tensor,
               length_index: torch.Tensor) -> None:
        """Add ``values`` (batch x k x D), seen at the length indices ``length_index`` (k,),
        for windows with ids ``windows`` (batch,) in groups ``groups`` (batch,)."""
        v = values.detach().to(self.total.device, torch.float64)
        groups = groups.to(self.total.device)
        ones = torch.ones(v.shape[:2], dtype=torch.float64, device=v.device)
        if torch.equal(length_index.cpu(), torch.arange(self.count.shape[1])):  # all at once
            self.total.index_add_(0, groups, v)
            self.total_sq.index_add_(0, groups, v * v)
            self.count.index_add_(0, groups, ones)
        else:
            for j, k in enumerate(length_index.tolist()):
                self.total[:, k].index_add_(0, groups, v[:, j])
                self.total_sq[:, k].index_add_(0, groups, v[:, j] * v[:, j])
                self.count[:, k].index_add_(0, groups, ones[:, j])
        if self.directions is not None:
            proj = (v @ self.directions).cpu().numpy()  # batch x k x m
            for b, (w, g) in enumerate(zip(windows.tolist(), groups.tolist())):
                row = self._projections.setdefault(w, {})
                for j, k in enumerate(length_index.tolist()):
                    row[k] = proj[b, j]
                self._window_group[w] = g

    def result(self) -> Moments:
        projections = window_group = None
        if self.directions is not None and self._projections:
            ids = sorted(self._projections)
            n_lengths, m = self.count.shape[1], self.directions.shape[1]
            projections = np.full((len(ids), n_lengths, m), np.nan)
            for i, w in enumerate(ids):
                for k, vec in self._projections[w].items():
                    projections[i, k] = vec
            window_group = np.array([self._window_group[w] for w in ids])
        return Moments(self.count.cpu().numpy(), self.total.cpu().numpy(),
                       self.total_sq.cpu().numpy(), projections, window_group)


@dataclass(frozen=True)
class GroupVariance:
    """Total variance tr Cov = E||r - mu||^2 per length, and its per-group pieces.

    ``variance[k]`` is the unbiased estimate over all windows; ``by_group[g, k]`` is the mean
    squared deviation of group g's windows from the overall mean (the bootstrap resamples these).
    """

    variance: np.ndarray
    by_group: np.ndarray
    kept_dims: np.ndarray


def total_variance(moments: Moments, exclude_dims: np.ndarray | None = None) -> GroupVariance:
    """E||r - mu||^2 from grouped sums: sum_w ||r_w - mu||^2 = S2 - 2 mu.S1 + c ||mu||^2 per group.

    ``exclude_dims`` removes coordinates (e.g. massive activations) before summing.
    """
    dim = moments.total.shape[-1]
    keep = np.ones(dim, bool)
    if exclude_dims is not None and len(exclude_dims):
        keep[np.asarray(exclude_dims)] = False
    count, s1, s2 = moments.count, moments.total[..., keep], moments.total_sq[..., keep]
    n = count.sum(0)
    mu = s1.sum(0) / n[:, None]
    dev = s2.sum(-1) - 2 * np.einsum("gkd,kd->gk", s1, mu) + count * (mu ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_group = dev / count
    variance = dev.sum(0) / (n - 1)
    return GroupVariance(variance, by_group, np.flatnonzero(keep))


def massive_dims(moments: Moments, k: int) -> np.ndarray:
    """The k coordinates with the largest root-mean-square value (massive activations)."""
    rms = np.sqrt(moments.total_sq.sum((0, 1)) / moments.count.sum())
    return np.argsort(rms)[::-1][:k]
