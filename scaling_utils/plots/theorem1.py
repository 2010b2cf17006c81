"""Theorem 1's figures: variance against context length by layer, fitted exponents, the
Gaussianity test, the effective context, loss against position and the trained students."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, NullFormatter
import numpy as np
import pandas as pd
from .lazy import seaborn


def variance_curves(curves: pd.DataFrame, ax: plt.Axes, x: str = "n", title: str = "",
                    hue: str = "layer", claimed_slope: float = -1.0,
                    legend: bool = True) -> plt.Axes:
    """Variance against context length on log-log axes, with the claimed slope drawn through the
    geometric mean of the first points; the legend (``legend``) goes outside, on the right."""
    seaborn().lineplot(data=curves, x=x, y="variance", hue=hue, marker="o", ax=ax,
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
        seaborn().lineplot(data=table[table.variant == variant], x="n", y="ks_over_null", hue="site",
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


def t1_variance_grid(curves: pd.DataFrame, variants=None) -> plt.Figure:
    """Variance against n, one column per variant (``variants``: their order; default as in
    ``curves``) and one row per output kind (attention, block), one line per layer."""
    variants = list(dict.fromkeys(curves.variant)) if variants is None else list(variants)
    fig, axes = plt.subplots(2, len(variants), figsize=(3.2 * len(variants), 6.5), squeeze=False)
    for col, name in enumerate(variants):
        for row, kind in enumerate(("attention", "block")):
            part = curves[(curves.variant == name) & (curves.kind == kind)]
            variance_curves(part, axes[row, col], title=f"{name}\n{kind} output",
                            legend=(row, col) == (0, len(variants) - 1))
    fig.tight_layout()
    return fig


def t1_exponents(fits: pd.DataFrame, margin: float, claimed: float = -1.0) -> plt.Figure:
    """Per-layer variance exponents with their intervals, attention (left) and block (right)
    outputs, one series per variant; the band is the claim's margin."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, ("attention", "block")):
        ax.axhspan(claimed - margin, claimed + margin, color="0.85", zorder=0)
        exponents_by_layer(fits[fits.kind == kind], ax, title=f"{kind} output", claimed=claimed)
    fig.tight_layout()
    return fig


def t1_headline(subsets: pd.DataFrame, summary: pd.DataFrame, margin: float,
                claimed: float = -1.0) -> plt.Figure:
    """Left: the median exponent over layers with its interval for every variant and output
    kind (``summary``).  Right: the headline on all windows and on disjoint subsets of them
    (``subsets``), each with its own interval.  Grey band: the claim within its margin."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True,
                             gridspec_kw=dict(width_ratios=[1.4, 1]))
    rows = summary.assign(label=summary.variant + ", " + summary.kind,
                          exponent=summary.median_exponent)
    panels = ((axes[0], rows, "median over layers, every variant"),
              (axes[1], subsets, "headline on disjoint window subsets"))
    for ax, table, title in panels:
        y = np.arange(len(table))[::-1]
        ax.axvspan(claimed - margin, claimed + margin, color="0.85", zorder=0)
        ax.axvline(claimed, color="k", ls="--", lw=1)
        ax.axvline(0, color="grey", lw=0.8)
        if len(table):
            ax.errorbar(table.exponent, y, xerr=[table.exponent - table.ci_low,
                                                 table.ci_high - table.exponent], fmt="o", capsize=3)
        else:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
        ax.set_yticks(y, table.label if len(table) else [])
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set(xlabel="exponent b in variance ~ n^b", title=title)
    fig.tight_layout()
    return fig


def t1_effective_context(neff: pd.DataFrame, lengths, sink_variant: str) -> plt.Figure:
    """Left: n_eff against n (median over layers, band over 80 % of layers) per variant, with
    n_eff = n dashed.  Right: attention on the first token per layer of ``sink_variant``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    seaborn().lineplot(data=neff, x="n", y="n_eff", hue="variant", estimator="median",
                 errorbar=("pi", 80), marker="o", ax=axes[0])
    axes[0].plot(lengths, lengths, "k--", lw=1, label="n_eff = n")
    axes[0].set(xscale="log", yscale="log", ylabel="n_eff", title="effective context")
    axes[0].legend()
    seaborn().lineplot(data=neff[neff.variant == sink_variant], x="n", y="sink_mass", hue="layer",
                 palette="viridis", ax=axes[1], legend=False)
    axes[1].set(xscale="log", title="trained model: first-token attention",
                ylabel="attention weight on position 0")
    fig.tight_layout()
    return fig


def t1_variance_against_neff(curves: pd.DataFrame) -> plt.Figure:
    """Attention-output variance against the effective context, one line per layer."""
    fig, ax = plt.subplots(figsize=(6, 4))
    variance_curves(curves[curves.kind == "attention"], ax, x="n_eff",
                    title="trained model, attention output")
    return fig


def t1_position_loss(curve: pd.DataFrame, title: str) -> plt.Figure:
    """Mean next-token loss against context length with the fitted offset power law."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve.context, curve.loss, ".", ms=3, label="measured")
    ax.plot(curve.context, curve.fitted, "r-", label=r"$L_\infty + A\,t^{-\alpha}$")
    ax.set(xscale="log", xlabel="tokens of context t", ylabel="next-token loss (nats)", title=title)
    ax.legend()
    return fig


def t1_students(medians: pd.DataFrame, margin: float, claimed: float = -1.0) -> plt.Figure:
    """Median exponent over layers (with its interval) against student size P, per output
    kind; a note in the panel when the students were not measured."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhspan(claimed - margin, claimed + margin, color="0.85", zorder=0)
    ax.axhline(claimed, color="k", ls="--", lw=1)
    if len(medians):
        for kind, part in medians.groupby("kind", sort=False):
            part = part.sort_values("P")
            ax.errorbar(part.P, part.exponent, yerr=[part.exponent - part.ci_low,
                                                     part.ci_high - part.exponent],
                        fmt="o-", capsize=3, label=kind)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "students not measured in this run", ha="center", transform=ax.transAxes)
    ax.set(xscale="log", xlabel="non-embedding parameters P",
           ylabel="median variance exponent over layers", title="students, own language")
    return fig


def t1_local_exponents(local: pd.DataFrame, worlds: pd.DataFrame, lengths,
                       claimed: float = -1.0) -> plt.Figure:
    """Left: the attention output's local exponent between neighbouring n (median over layers,
    jackknife interval), one series per variant.  Right: the same in worlds of k causal
    averages, followed far past the measured n (grey: the page's range of n)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for variant, rows in local.groupby("variant", sort=False):
        axes[0].errorbar(rows.n, rows.exponent, yerr=[rows.exponent - rows.ci_low,
                                                      rows.ci_high - rows.exponent],
                         fmt="o-", capsize=3, label=variant)
    for depth, rows in worlds.groupby("depth"):
        axes[1].plot(rows.n, rows.exponent, label=f"k = {depth}")
    axes[1].axvspan(min(lengths), max(lengths), color="0.9", zorder=0)
    for ax, title in zip(axes, ("measured: attention output", "k causal averages (CLT exact "
                                                               "in the limit)")):
        ax.axhline(claimed, color="k", ls="--", lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="context length n (geometric mean of the pair)", title=title)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("local exponent d log variance / d log n")
    fig.tight_layout()
    return fig


def t1_design(local: pd.DataFrame, claimed: float = -1.0) -> plt.Figure:
    """The attention output's local exponent against n in every cell of the design: one panel
    per model, one colour per text; solid with intervals, the first token as drawn; dashed,
    the first token fixed."""
    models = list(dict.fromkeys(local.model))
    fig, axes = plt.subplots(1, len(models), figsize=(11, 4), sharey=True, squeeze=False)
    colours = dict(zip(dict.fromkeys(local.text), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, model in zip(axes[0], models):
        for (text, first), rows in local[local.model == model].groupby(["text", "first_token"],
                                                                        sort=False):
            drawn = first == "as drawn"
            ax.errorbar(rows.n, rows.exponent,
                        yerr=[rows.exponent - rows.ci_low, rows.ci_high - rows.exponent]
                        if drawn else None, fmt="o-" if drawn else "s--", capsize=3,
                        color=colours[text], alpha=1.0 if drawn else 0.6,
                        label=f"{text}, first token {first}")
        ax.axhline(claimed, color="k", ls="--", lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="context length n (geometric mean of the pair)", title=model)
    axes[0, 0].set_ylabel("local exponent d log variance / d log n")
    axes[0, 0].legend(fontsize=7, loc="lower left")  # the trained panel has every line
    fig.tight_layout()
    return fig
