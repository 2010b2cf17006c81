"""Figures shared by the notebooks (seaborn on matplotlib axes; nothing is computed here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
import pandas as pd
import seaborn as sns


def variance_curves(curves: pd.DataFrame, ax: plt.Axes, x: str = "n", title: str = "",
                    hue: str = "layer", claimed_slope: float = -1.0,
                    legend: bool = True) -> plt.Axes:
    """Variance against context length on log-log axes, with the claimed slope drawn through the
    geometric mean of the first points; the legend (``legend``) goes outside, on the right."""
    sns.lineplot(data=curves, x=x, y="variance", hue=hue, marker="o", ax=ax,
                 palette="viridis", legend="brief" if legend else False)
    x0 = curves[x].min()
    y0 = np.exp(np.log(curves.loc[curves[x] == x0, "variance"]).mean())
    xs = np.array([x0, curves[x].max()])
    ax.plot(xs, y0 * (xs / x0) ** claimed_slope, "k--", lw=1.5, label=f"slope {claimed_slope:g} (claim)")
    ax.set(xscale="log", yscale="log", xlabel="context length n" if x == "n" else "effective context n_eff",
           ylabel=r"$E\|r - \mu\|^2$", title=title)
    ax.xaxis.set_minor_formatter(NullFormatter())  # short log ranges: no crowded labels
    if legend:
        ax.legend(title=hue, loc="upper left", bbox_to_anchor=(1.02, 1))
    return ax


def exponents_by_layer(fits: pd.DataFrame, ax: plt.Axes, title: str = "",
                       hue: str = "variant", claimed: float = -1.0) -> plt.Axes:
    """Fitted variance exponent per layer with bootstrap CIs, one series per ``hue`` value."""
    for name, group in fits.groupby(hue, sort=False):
        ax.errorbar(group.layer, group.exponent,
                    yerr=[group.exponent - group.ci_low, group.ci_high - group.exponent],
                    fmt="o-", ms=3, capsize=2, label=name)
    ax.axhline(claimed, color="k", ls="--", lw=1.5, label=f"claim ({claimed:g})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="layer", ylabel="exponent b in variance ~ n^b", title=title)
    ax.legend()
    return ax


def ks_panels(table: pd.DataFrame, max_columns: int = 4) -> plt.Figure:
    """Small multiples of the scaled KS distance (column ``ks_over_null``: the KS distance to
    the fitted normal over the 95 % null quantile for the same sample size) against n: one panel
    per variant, one line per site, median over directions with a band over the quartiles.
    Above 1 is a rejection at 5 %."""
    variants = list(dict.fromkeys(table.variant))
    columns = min(max_columns, len(variants))
    rows = -(-len(variants) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.2 * rows), sharey=True,
                             squeeze=False)
    for ax, variant in zip(axes.flat, variants):
        sns.lineplot(data=table[table.variant == variant], x="n", y="ks_over_null", hue="site",
                     estimator="median", marker="o", errorbar=("pi", 50), ax=ax)
        ax.axhline(1.0, color="k", ls="--", lw=1.2)
        ax.set(xscale="log", xlabel="context length n", ylabel="KS / null 95 % quantile",
               title=variant)
        ax.xaxis.set_minor_formatter(NullFormatter())  # short log ranges: no crowded labels
        ax.legend(title=None)
    for ax in axes.flat[len(variants):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def loss_against_position(curve: pd.DataFrame, ax: plt.Axes, title: str = "") -> plt.Axes:
    """Mean next-token loss against context length with the fitted offset power law."""
    ax.plot(curve.context, curve.loss, ".", ms=3, label="measured")
    ax.plot(curve.context, curve.fitted, "r-", label=r"$L_\infty + A\,t^{-\alpha}$")
    ax.set(xscale="log", xlabel="tokens of context t", ylabel="next-token loss (nats)", title=title)
    ax.legend()
    return ax


# ---- Theorem 2

def _plain_minor_ticks(axes) -> None:
    """No labels on the minor ticks of log axes that span more than a decade (they would crowd
    the major ones); shorter log axes keep them, having no major tick to show."""
    for ax in np.ravel(axes):
        ax.figure.canvas.draw_idle()
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            if axis.get_scale() == "log" and low > 0 and high / low > 10:
                axis.set_minor_formatter(NullFormatter())


def _bars(value, low, high) -> np.ndarray:
    """Error-bar lengths below and above ``value`` for an interval [low, high]; zero where a
    bootstrap percentile interval does not contain its point estimate."""
    value, low, high = (np.asarray(v, float) for v in (value, low, high))
    return np.clip(np.stack([value - low, high - value]), 0, None)


def bias_variance_panels(result) -> plt.Figure:
    """Left: held-out loss against D, one line per size P (points: runs; crosses: repeated data),
    with the exact loss eps and the unigram entropy.  Middle: the capacity term's upper bound
    B(P) = L(P, D_max) - eps with its hierarchical 95 % interval.  Right: V(P, D) with its
    interval."""
    runs, cells = result.runs, result.cells
    fresh = runs[runs.data_mode == "fresh"]
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 4))
    sns.lineplot(data=fresh, x="D", y="loss", hue="P", marker="o", palette="viridis",
                 ax=axes[0], errorbar=None)
    sns.scatterplot(data=fresh, x="D", y="loss", hue="P", palette="viridis", ax=axes[0],
                    legend=False, s=12, alpha=0.6)
    axes[0].axhline(result.eps, color="k", ls="--", label="eps (exact)")
    axes[0].axhline(result.unigram, color="grey", ls=":", label="unigram entropy")
    repeated = runs[runs.data_mode == "repeated"]
    axes[0].plot(repeated.D, repeated.loss, "rx", label="repeated data")
    axes[0].set(xscale="log", xlabel="training tokens D", ylabel="held-out loss (nats)",
                title="loss against data")
    axes[0].legend(fontsize="x-small", title="P", title_fontsize="x-small")
    bias = cells.drop_duplicates("P").sort_values("P")
    axes[1].errorbar(bias.P, bias.bias, yerr=_bars(bias.bias, bias.bias_ci_low, bias.bias_ci_high),
                     fmt="o-", capsize=3)
    axes[1].set(xscale="log", xlabel="non-embedding parameters P",
                ylabel="B(P) = L(P, D_max) - eps (nats)", title="capacity term (upper bound)")
    below = cells[cells.D < cells.groupby("P").D.transform("max")]  # V = 0 at D_max by definition
    for (P, group), colour in zip(below.groupby("P"), sns.color_palette("viridis", cells.P.nunique())):
        axes[2].errorbar(group.D, group.variance_term,
                         yerr=_bars(group.variance_term, group.variance_ci_low,
                                    group.variance_ci_high),
                         fmt="o-", capsize=3, color=colour, label=f"{P:,.0f}")
    axes[2].axhline(0, color="grey", lw=0.8)
    axes[2].set(xscale="log", xlabel="training tokens D", ylabel="V(P, D) = L - eps - B(P) (nats)",
                title="finite-data term")
    axes[2].legend(title="P", fontsize="x-small", title_fontsize="x-small")
    _plain_minor_ticks(axes)
    fig.tight_layout()
    return fig


def seed_spread(result) -> plt.Figure:
    """The paper's V(P, D) against the standard deviation of the loss across seeds, one point
    per (P, D) cell below the largest D (colour: log10 P)."""
    cells = result.cells
    spread = cells[(cells.seed_sd > 0) & (cells.variance_term > 0)]
    fig, ax = plt.subplots(figsize=(6, 4))
    points = ax.scatter(spread.variance_term, spread.seed_sd, c=np.log10(spread.P), cmap="viridis")
    fig.colorbar(points, ax=ax, label="log10 P")
    ax.set(xscale="log", yscale="log", xlabel="paper's V(P, D) (nats)",
           ylabel="SD of loss across seeds (nats)", title="two different 'variances'")
    return fig


def returns_per_doubling(result) -> plt.Figure:
    """Nats of held-out loss gained per doubling of D (left, one line per P) and of P (right,
    one line per D)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sns.lineplot(data=result.returns_d, x="D_to", y="gain_per_doubling", hue="P", marker="o",
                 palette="viridis", ax=axes[0])
    axes[0].set(xscale="log", xlabel="D (upper end of the doubling)",
                ylabel="nats gained per doubling", title="returns to data")
    sns.lineplot(data=result.returns_p, x="P_to", y="gain_per_doubling", hue="D", marker="o",
                 palette="flare", ax=axes[1])
    axes[1].set(xscale="log", xlabel="P (upper end of the doubling)",
                ylabel="nats gained per doubling", title="returns to parameters")
    _plain_minor_ticks(axes)
    fig.tight_layout()
    return fig


def seed_estimates(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Figure:
    """Each headline number fitted to one training seed's runs (dots) beside the pooled value
    and its hierarchical 95 % interval (bar), one row per quantity."""
    seeds = [c for c in table.columns if c.startswith("seed ")]
    fig, axes = plt.subplots(len(table), 1, figsize=(7, 1.2 * len(table) + 0.6), squeeze=False)
    for ax, (_, row) in zip(axes[:, 0], table.iterrows()):
        ax.errorbar([row.pooled], [0], xerr=_bars([row.pooled], [row.ci_low], [row.ci_high]),
                    fmt="s", color="k", capsize=4, label="pooled (95 % interval)")
        for i, s in enumerate(seeds):
            ax.plot(row[s], 0.25 + 0.1 * i, "o", label=s)
        ax.set_yticks([])
        ax.set_ylim(-0.4, 0.7)
        ax.set_title(row.quantity, fontsize="medium", loc="left")
    axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


# ---- Theorem 3

def snr_panels(result) -> plt.Figure:
    """Left: SNR against D, one line per size (points: runs; dotted: untrained students; dashed:
    slope 1).  Middle: SNR against P, one line per D.  Right: held-out loss against SNR."""
    grid = result.grid
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 4))
    sns.lineplot(data=grid, x="D", y="snr", hue="P", marker="o", palette="viridis", ax=axes[0],
                 errorbar=None)
    sns.scatterplot(data=grid, x="D", y="snr", hue="P", palette="viridis", ax=axes[0],
                    legend=False, s=12, alpha=0.6)
    ref = np.array([grid.D.min(), grid.D.max()])
    axes[0].plot(ref, grid.snr.median() * ref / np.sqrt(ref.prod()), "k--", lw=1,
                 label="slope 1 (claim)")
    for value in result.untrained.snr:
        axes[0].axhline(value, color="grey", ls=":", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="training tokens D", ylabel="SNR",
                title="SNR against data")
    axes[0].legend(fontsize="small")
    sns.lineplot(data=grid, x="P", y="snr", hue="D", marker="o", palette="flare", ax=axes[1],
                 errorbar=None)
    sns.scatterplot(data=grid, x="P", y="snr", hue="D", palette="flare", ax=axes[1], legend=False,
                    s=12, alpha=0.6)
    axes[1].set(xscale="log", yscale="log", xlabel="non-embedding parameters P", ylabel="SNR",
                title="SNR against size")
    sns.scatterplot(data=grid, x="snr", y="loss", hue="P", palette="viridis", ax=axes[2])
    axes[2].set(xscale="log", xlabel="SNR", ylabel="held-out loss (nats)", title="SNR and loss")
    _plain_minor_ticks(axes)
    fig.tight_layout()
    return fig


def snr_by_context(result) -> plt.Figure:
    """SNR of the pretrained model's final hidden state with respect to the next token against
    the context length n (bars: 95 % interval over windows)."""
    table = result.context
    table = table[table.snr > 0] if len(table) else table
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(table):
        ax.errorbar(table.n, table.snr, yerr=_bars(table.snr, table.ci_low.clip(lower=1e-6),
                                                   table.ci_high), marker="o", capsize=3)
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no bin with a positive SNR in this run", ha="center",
                transform=ax.transAxes)
    ax.set(xlabel="context length n (bin centre)", ylabel="SNR",
           title=f"{result.model_name}: SNR w.r.t. the next token")
    return fig
