"""Figures shared by the notebooks (seaborn on matplotlib axes; nothing is computed here).
Theorem 1's figures live in :mod:`.theorem1` and are read from here like the others."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter
import numpy as np
import pandas as pd

from .lazy import seaborn
from .theorem1 import (exponents_by_layer, ks_panels, t1_design, t1_effective_context,
                       t1_exponents, t1_headline, t1_local_exponents, t1_position_loss, t1_students,
                       t1_variance_against_neff, t1_variance_grid, variance_curves)

__all__ = ["bias_variance_panels", "ceiling_curves", "entropy_profile", "exponents_by_layer",
           "ks_panels", "returns_per_doubling", "seed_estimates", "seed_spread", "snr_by_context",
           "snr_panels", "t1_design", "t1_effective_context", "whitened_snr_panels", "t1_exponents", "t1_headline",
           "t1_local_exponents", "t1_position_loss", "t1_students", "t1_variance_against_neff", "t1_variance_grid",
           "t4_capabilities", "t4_icl", "t4_mechanism", "t4_seed_thresholds", "variance_curves",
           "verdict_figure",
           "verdict_panels", "verdict_shares"]


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
        if np.isfinite(v.effect):  # the interval as a line: a bootstrap percentile interval
            # at a bound of its parameter need not contain the point estimate
            ax.plot([v.ci_low, v.ci_high], [0, 0], "|-", color=colour, lw=2, ms=10)
            ax.plot([v.effect], [0], "o", color=colour, ms=7)
        if np.isfinite(v.bound) and v.margin > 0:
            ax.axvspan(v.bound - v.margin, v.bound + v.margin, color="grey", alpha=0.2)
        if np.isfinite(v.bound):
            ax.axvline(v.bound, color="k", ls="--", lw=1)
        if not np.isfinite(v.effect):  # nothing to draw: say why instead of an empty panel
            ax.text(0.5, 0.5, f"no effect measured: {v.reason or v.to_decide}", fontsize=8,
                    ha="center", va="center", transform=ax.transAxes, wrap=True)
            ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("\n".join([*_wrapped(v.claim), v.word]), fontsize=8,
                     color=colour if v.word != "undetermined" else "k")


def _wrapped(text: str, width: int = 100) -> list[str]:
    """A panel title's lines: long claims wrap instead of widening the figure."""
    import textwrap

    return textwrap.wrap(text, width) or [""]


def verdict_figure(verdicts) -> plt.Figure:
    """One row per verdict with an effect (:func:`verdict_panels`): the effect with its interval
    against what its rule compares it with, each on its own scale; the verdicts with no effect
    measured share one last panel that lists them with the reason."""
    measured = [v for v in verdicts if np.isfinite(v.effect)]
    missing = [v for v in verdicts if not np.isfinite(v.effect)]
    listed = [("- " if i == 0 else "  ") + line for v in missing
              for i, line in enumerate(_wrapped(f"{v.claim}: {v.reason or v.to_decide}", 108))]
    # inches per row: a panel and its title lines, and the list's lines
    heights = [1.1 + 0.15 * len(_wrapped(v.claim)) for v in measured]
    heights += [0.6 + 0.25 * len(listed)] if missing else []
    fig, axes = plt.subplots(len(heights), 1, squeeze=False, figsize=(7, sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    verdict_panels(measured, axes[:len(measured)])
    if missing:
        ax = axes[-1, 0]
        ax.set_axis_off()
        ax.set_title(f"undetermined, no effect measured ({len(missing)})", fontsize=8)
        ax.text(0, 1, "\n".join(listed), fontsize=7, va="top", ha="left",
                transform=ax.transAxes)
    fig.tight_layout()
    return fig


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
    seaborn().lineplot(data=fresh, x="D", y="loss", hue="P", marker="o", palette="viridis",
                 ax=axes[0], errorbar=None)
    seaborn().scatterplot(data=fresh, x="D", y="loss", hue="P", palette="viridis", ax=axes[0],
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
    for (P, group), colour in zip(below.groupby("P"), seaborn().color_palette("viridis", cells.P.nunique())):
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
    seaborn().lineplot(data=result.returns_d, x="D_to", y="gain_per_doubling", hue="P", marker="o",
                 palette="viridis", ax=axes[0])
    axes[0].set(xscale="log", xlabel="D (upper end of the doubling)",
                ylabel="nats gained per doubling", title="returns to data")
    seaborn().lineplot(data=result.returns_p, x="P_to", y="gain_per_doubling", hue="D", marker="o",
                 palette="flare", ax=axes[1])
    axes[1].set(xscale="log", xlabel="P (upper end of the doubling)",
                ylabel="nats gained per doubling", title="returns to parameters")
    _plain_minor_ticks(axes)
    fig.tight_layout()
    return fig


def entropy_profile(result) -> plt.Figure:
    """The additive law's profile in E: the RMSE of log L of the best law with each floor E
    (line), the exact eps (dashed), the free fit's E (dotted) and the seed-to-seed SD of log L
    above the profile's minimum (band): floors whose RMSE lies in the band fit about as well."""
    profile = result.entropy_profile
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(profile.E, profile.rmse, "k-", lw=1.5, label="best law with floor E")
    low = profile.rmse.min()
    ax.axhspan(low, low + result.seed_noise, color="0.85", label="minimum + seed SD of log L")
    ax.axvline(result.eps, color="C3", ls="--", label="exact eps")
    free_E = float(result.fits.set_index(["fit", "parameter"]).loc[("eps free", "E"), "estimate"])
    ax.axvline(free_E, color="C0", ls=":", label="free fit's E")
    ax.set(xlabel="floor E (nats)", ylabel="RMSE of log L")
    ax.legend(fontsize="small", loc="upper left")
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
    seaborn().lineplot(data=grid, x="D", y="snr", hue="P", marker="o", palette="viridis", ax=axes[0],
                 errorbar=None)
    seaborn().scatterplot(data=grid, x="D", y="snr", hue="P", palette="viridis", ax=axes[0],
                    legend=False, s=12, alpha=0.6)
    ref = np.array([grid.D.min(), grid.D.max()])
    axes[0].plot(ref, grid.snr.median() * ref / np.sqrt(ref.prod()), "k--", lw=1,
                 label="slope 1 (claim)")
    for value in result.untrained.snr:
        axes[0].axhline(value, color="grey", ls=":", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="training tokens D", ylabel="SNR",
                title="SNR against data")
    axes[0].legend(fontsize="small")
    seaborn().lineplot(data=grid, x="P", y="snr", hue="D", marker="o", palette="flare", ax=axes[1],
                 errorbar=None)
    seaborn().scatterplot(data=grid, x="P", y="snr", hue="D", palette="flare", ax=axes[1], legend=False,
                    s=12, alpha=0.6)
    axes[1].set(xscale="log", yscale="log", xlabel="non-embedding parameters P", ylabel="SNR",
                title="SNR against size")
    seaborn().scatterplot(data=grid, x="snr", y="loss", hue="P", palette="viridis", ax=axes[2])
    axes[2].set(xscale="log", xlabel="SNR", ylabel="held-out loss (nats)", title="SNR and loss")
    _plain_minor_ticks(axes)
    fig.tight_layout()
    return fig


def whitened_snr_panels(result) -> plt.Figure:
    """Left: whitened SNR against D, one line per size (points: runs; dotted, in the size's
    colour: its untrained student; solid black with a band: the exact belief state's, the
    ceiling; dash-dot: the current token alone).  Right: each size's exponent in D on both
    scales with its 95 % interval (dashed: the claimed 1)."""
    grid, refs, per_size = result.grid, result.references, result.per_size
    sizes = sorted(grid.P.unique())
    colours = dict(zip(sizes, seaborn().color_palette("viridis", len(sizes))))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    for p in sizes:
        runs = grid[grid.P == p]
        mean = runs.groupby("D").snr_white.mean()
        ax.plot(mean.index, mean, "o-", color=colours[p], label=f"P = {p:,}")
        ax.scatter(runs.D, runs.snr_white, color=colours[p], s=12, alpha=0.6)
        floor = result.untrained.loc[result.untrained.P == p, "snr_white"]
        ax.axhline(floor.iloc[0], color=colours[p], ls=":", lw=1)
    ceiling, token = refs.iloc[0], refs.iloc[1]
    ax.axhline(ceiling.snr_white, color="k", lw=1.5, label="exact belief state (ceiling)")
    ax.axhspan(ceiling.ci_low, ceiling.ci_high, color="k", alpha=0.1)
    ax.axhline(token.snr_white, color="grey", ls="-.", lw=1, label="current token alone")
    ax.set(xscale="log", yscale="log", xlabel="training tokens D",
           ylabel="whitened SNR tr(Σ_W⁻¹ Σ_B)", title="whitened SNR against data")
    ax.set_ylim(top=ceiling.ci_high * 3)  # room for the legend between the runs and the ceiling
    ax.legend(fontsize="x-small", ncol=2, loc="upper left", bbox_to_anchor=(0, 0.78))
    ax = axes[1]
    y = np.arange(len(per_size))
    for offset, prefix, label, colour in ((-0.12, "", "trace ratio", "C0"),
                                          (0.12, "whitened_", "whitened", "C1")):
        ax.errorbar(per_size[f"{prefix}exponent"], y + offset, fmt="o", color=colour, capsize=3,
                    xerr=_bars(per_size[f"{prefix}exponent"], per_size[f"{prefix}ci_low"],
                               per_size[f"{prefix}ci_high"]), label=label)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="claim: 1")
    ax.set_yticks(y, [f"P = {p:,}" for p in per_size.P])
    ax.set(xlabel="exponent of SNR in D (95 % interval)", title="each size's exponent in D")
    ax.legend(fontsize="small")
    _plain_minor_ticks(axes[:1])
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
            seaborn().lineplot(data=shown, x=x, y=y, hue="size", units="run", estimator=None,
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


def t4_icl(table: pd.DataFrame) -> plt.Figure:
    """The copy runs' in-context-learning score (loss on the repeat minus loss on the first
    occurrence, nats) against training tokens D, one line per run coloured by model size."""
    part = table[(table.task == "copy") & table.icl_score.notna()]
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    seaborn().lineplot(data=part, x="D", y="icl_score", hue="size", units="run", estimator=None,
                 marker="o", markersize=3, lw=1, ax=ax)
    ax.axhline(0.0, color="grey", ls=":", lw=1)
    ax.set(xscale="log", xlabel="training tokens D", ylabel="in-context-learning score (nats)",
           title="copy: loss on the repeat minus loss on the first occurrence")
    ax.legend(title="size", fontsize="small")
    fig.tight_layout()
    return fig


def t4_mechanism(table: pd.DataFrame, sweep: pd.DataFrame, per_run: pd.DataFrame,
                 column: str = "snr", label: str = "SNR") -> plt.Figure:
    """Per task that some run learned: exact match against SNR (``column`` of both tables,
    e.g. ``snr_white``) along training (solid) and under noise added at the final weights
    (dashed), one line per run that learned it coloured by model size, with each run's two
    fitted thresholds as a circle (training) and a cross (noise) at half-way between chance
    and 1."""
    tasks = list(dict.fromkeys(per_run.task)) if len(per_run) else []
    sizes = list(dict.fromkeys(table["size"]))
    colour = dict(zip(sizes, seaborn().color_palette(n_colors=len(sizes))))
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.6 * max(1, len(tasks)), 3.4),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        chance = float(table[table.task == task].chance.iloc[0])
        level = chance + (1 - chance) / 2
        for row in per_run[per_run.task == task].itertuples():
            for part, style in ((table, "-"), (sweep, "--")):
                rows = part[(part.task == task) & (part.run == row.run) & (part[column] > 0)
                            & np.isfinite(part[column])]
                rows = rows.sort_values(column)
                ax.plot(rows[column], rows.exact, style, color=colour[row.size], lw=1)
            ax.plot([row.theta_training], [level], "o", mfc="none", color=colour[row.size], ms=6)
            ax.plot([row.theta_noise], [level], "x", color=colour[row.size], ms=6)
        ax.axhline(chance, color="grey", ls=":", lw=1)
        ax.set(xscale="log", ylim=(-0.03, 1.03), xlabel=f"{label} before the last MLP",
               ylabel="exact match", title=f"{task}: training (solid), noise (dashed)")
    if not tasks:
        axes[0, 0].text(0.5, 0.5, "no task learned: no noise sweep to read", ha="center",
                        transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    else:
        handles = [plt.Line2D([], [], color=colour[s], label=s) for s in sizes]
        handles += [plt.Line2D([], [], color="k", ls=ls, marker=m, mfc="none", label=label)
                    for ls, m, label in (("-", "o", "training, theta"),
                                         ("--", "x", "noise, theta"))]
        axes[0, -1].legend(handles=handles, fontsize="x-small", loc="upper left",
                           bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def ceiling_curves(laws: dict, run: dict, stock: dict) -> plt.Figure:
    """The reducible loss L* - E left at the compute optimum of each published law against
    training compute, with the largest published run and, on each curve, where the optimal
    token count reaches the stock of public text (its 90 % interval as a bar)."""
    from ..ceiling import compute_for_tokens, compute_optimal

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    C = np.logspace(20, 30, 81)
    for (name, law), colour in zip(laws.items(), seaborn().color_palette("colorblind")):
        ax.plot(C, [compute_optimal(law, c).above_floor for c in C], color=colour, label=name)
        at = [compute_for_tokens(law, stock[q]) for q in ("tokens", "ci_low", "ci_high")]
        y = compute_optimal(law, at[0]).above_floor
        ax.errorbar([at[0]], [y], xerr=[[at[0] - at[1]], [at[2] - at[0]]], fmt="o",
                    color=colour, capsize=3)
    ax.axvline(run["flop"], color="0.4", linestyle="--", linewidth=1)
    ax.text(run["flop"], ax.get_ylim()[1], f" {run['name']}", va="top", ha="left", fontsize=9,
            color="0.3")
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOP)",
           ylabel="loss above the fitted floor, L* - E (nats)")
    ax.legend(frameon=False, title="published law (dots: optimal tokens reach the text stock)",
              title_fontsize=8, fontsize=9)
    fig.tight_layout()
    return fig
