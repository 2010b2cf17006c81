"""Figures shared by the notebooks (seaborn on matplotlib axes; nothing is computed here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def variance_curves(curves: pd.DataFrame, ax: plt.Axes, x: str = "n", title: str = "",
                    hue: str = "layer", claimed_slope: float = -1.0) -> plt.Axes:
    """Variance against context length on log-log axes, with the claimed slope drawn through the
    geometric mean of the first points."""
    sns.lineplot(data=curves, x=x, y="variance", hue=hue, marker="o", ax=ax,
                 palette="viridis", legend="brief")
    x0 = curves[x].min()
    y0 = np.exp(np.log(curves.loc[curves[x] == x0, "variance"]).mean())
    xs = np.array([x0, curves[x].max()])
    ax.plot(xs, y0 * (xs / x0) ** claimed_slope, "k--", lw=1.5, label=f"slope {claimed_slope:g} (claim)")
    ax.set(xscale="log", yscale="log", xlabel="context length n" if x == "n" else "effective context n_eff",
           ylabel=r"$E\|r - \mu\|^2$", title=title)
    ax.legend(fontsize=7, ncol=2)
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
    ax.legend(fontsize=7)
    return ax


def ks_against_n(table: pd.DataFrame, ax: plt.Axes, title: str = "") -> plt.Axes:
    """KS distance to the fitted normal, divided by the 95 % null quantile for the same sample
    size (column ``ks_over_null``), per context length: above 1 is a rejection at 5 %."""
    sns.lineplot(data=table, x="n", y="ks_over_null", hue="series" if "series" in table else "variant",
                 marker="o", errorbar=("pi", 50), ax=ax)
    ax.axhline(1.0, color="k", ls="--", lw=1.2, label="95 % null quantile")
    ax.set(xscale="log", xlabel="context length n", ylabel="KS / null 95 % quantile", title=title)
    ax.legend(fontsize=7)
    return ax


def loss_against_position(curve: pd.DataFrame, ax: plt.Axes, title: str = "") -> plt.Axes:
    """Mean next-token loss against context length with the fitted offset power law."""
    ax.plot(curve.context, curve.loss, ".", ms=3, label="measured")
    ax.plot(curve.context, curve.fitted, "r-", label=r"$L_\infty + A\,t^{-\alpha}$")
    ax.set(xscale="log", xlabel="tokens of context t", ylabel="next-token loss (nats)", title=title)
    ax.legend()
    return ax
