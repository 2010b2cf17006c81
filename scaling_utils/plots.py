"""Figures shared by the notebooks (seaborn on matplotlib axes; nothing is computed here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter
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


# ---- Theorem 4

def t4_capabilities(table: pd.DataFrame) -> plt.Figure:
    """One row per task: exact match against training tokens D (dotted: chance), exact match
    against the SNR, and the normalised answer log-probability against D; one line per run,
    coloured by model size."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(len(tasks), 3, figsize=(11, 2.9 * len(tasks)), squeeze=False)
    panels = (("D", "exact", "exact match", "exact match vs D"),
              ("snr", "exact", "exact match", "exact match vs SNR"),
              ("D", "logprob_norm", "normalised log-prob.", "log-probability vs D"))
    for row, task in enumerate(tasks):
        part = table[(table.task == task)]
        for col, (x, y, label, title) in enumerate(panels):
            ax = axes[row, col]
            shown = part[part[x] > 0] if x == "snr" else part
            sns.lineplot(data=shown, x=x, y=y, hue="size", units="run", estimator=None,
                         marker="o", markersize=3, lw=1, ax=ax, legend=row == 0 and col == 0)
            if y == "exact":
                ax.axhline(float(part.chance.iloc[0]), color="grey", ls=":", lw=1)
            ax.set(xscale="log", ylim=(-0.03, 1.03), ylabel=label,
                   xlabel="training tokens D" if x == "D" else "SNR", title=f"{task}: {title}")
    if axes[0, 0].get_legend() is not None:
        axes[0, 0].legend(title="size", fontsize="small")
    fig.tight_layout()
    return fig


def t4_seed_thresholds(per_seed: pd.DataFrame, pooled: pd.DataFrame) -> plt.Figure:
    """Per task, the threshold in SNR that each training seed alone gives (points with their
    intervals) beside the pooled threshold and its interval over runs (line and band); tasks
    with no fitted threshold inside the data are left out."""
    pooled = pooled[pooled.in_range & pooled.learned] if len(pooled) else pooled
    tasks = list(pooled.task) if len(pooled) else []
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(3.6 * max(1, len(tasks)), 3.0),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        row = pooled[pooled.task == task].iloc[0]
        ax.axhspan(row.ci_low, row.ci_high, color="C0", alpha=0.2, label="pooled 95 % CI")
        ax.axhline(row.theta, color="C0", lw=1.5, label="pooled theta")
        seeds = per_seed[(per_seed.task == task) & per_seed.in_range]
        ax.errorbar(seeds.seed.astype(str), seeds.theta,
                    yerr=[seeds.theta - seeds.ci_low, seeds.ci_high - seeds.theta],
                    fmt="o", color="k", capsize=3, label="one seed alone")
        ax.set(yscale="log", xlabel="training seed", ylabel="threshold theta (SNR)", title=task)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))
    if not tasks:
        axes[0, 0].text(0.5, 0.5, "no threshold fitted inside the data", ha="center",
                        transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    else:
        axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize="small")
    fig.tight_layout()
    return fig
