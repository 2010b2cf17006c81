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


# ---- How far to trust the verdicts

VERDICT_COLOURS = {"supported": "#1b9e77", "undetermined": "#bdbdbd", "contradicted": "#d95f02"}


def verdict_shares(rates: pd.DataFrame, ax: plt.Axes) -> plt.Axes:
    """One horizontal bar per (rule, world): the share of simulated data sets that got each
    verdict; a world where the claim fails is marked "(fails)", where it holds "(holds)"."""
    labels = [f"{r.chapter_short}: {r.rule}, {r.world} ({r.truth})" for r in rates.itertuples()]
    y = np.arange(len(rates))[::-1]
    left = np.zeros(len(rates))
    for word, colour in VERDICT_COLOURS.items():
        ax.barh(y, rates[word], left=left, color=colour, label=word, height=0.8)
        left += rates[word].to_numpy()
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlim=(0, 1), xlabel="share of simulated data sets")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="verdict")
    return ax


def verdict_panels(chain, axes) -> None:
    """One small panel per verdict: its effect with the 95 % interval, and what the rule compares
    it with (a shaded band for an equivalence rule, a dashed line for a one-sided one), coloured
    by the verdict; each panel keeps its own scale, since effects differ in kind."""
    for v, ax in zip(chain, np.ravel(axes)):
        colour = VERDICT_COLOURS[v.word]
        if np.isfinite(v.effect):
            ax.errorbar([v.effect], [0], xerr=[[v.effect - v.ci_low], [v.ci_high - v.effect]],
                        fmt="o", color=colour, capsize=4, ms=7)
        if np.isfinite(v.bound) and v.margin > 0:
            ax.axvspan(v.bound - v.margin, v.bound + v.margin, color="grey", alpha=0.2)
        if np.isfinite(v.bound):
            ax.axvline(v.bound, color="k", ls="--", lw=1)
        ax.set_yticks([])
        ax.set_title(f"{v.claim}\n{v.word}", fontsize=8, color=colour if v.word != "undetermined" else "k")
