"""The numbers and phrases Theorem 2's prose glues, read from the chapter's result (keys without
the ``t2_`` prefix, which :class:`~..base.ChapterResult` adds).
"""

from __future__ import annotations

import numpy as np

from ...estimators.chinchilla import E_FLOOR
from .rules import CLAIMS, COUPLING_MARGIN, ENTROPY_MARGIN


def glued_numbers(result) -> dict:
    """Every number the prose glues, from a :class:`~.study.Theorem2Result`."""
    fresh = result.runs[result.runs.data_mode == "fresh"]
    bias = result.cells.drop_duplicates("P").sort_values("P")
    fits = result.fits.set_index(["fit", "parameter"])
    spread = result.cells[(result.cells.seed_sd > 0) & (result.cells.variance_term > 0)]
    laws = result.laws.set_index("law")
    v = {k: result.verdict(k) for k in CLAIMS}
    cv, held_out = result.cv_difference, result.entropy_held_out
    return dict(
        eps=result.eps, eps_se=result.eps_se, unigram=result.unigram,
        rate=float(result.language.nats.iloc[1]), rate_se=float(result.language.se.iloc[1]),
        states=result.n_states, symbols=result.n_symbols, context=result.context,
        p_min=fresh.P.min(), p_max=fresh.P.max(), d_min=fresh.D.min(), d_max=fresh.D.max(),
        runs=len(result.runs), seeds=result.runs_per_cell,
        bias_small=bias.bias.iloc[0], bias_large=bias.bias.iloc[-1],
        converged=int(bias.converged.sum()), sizes=len(bias), n_boot=result.n_boot,
        fixed_alpha=fits.loc[("eps fixed", "alpha"), "estimate"],
        fixed_beta=fits.loc[("eps fixed", "beta"), "estimate"],
        free_E=fits.loc[("eps free", "E"), "estimate"],
        gamma=laws.loc["coupled", "gamma"],
        daic=laws.loc["coupled", "AIC"] - laws.loc["additive", "AIC"],
        cv_add=laws.loc["additive", "held-out RMSE"],
        cv_coupled=laws.loc["coupled", "held-out RMSE"],
        cv_diff=cv.effect, cv_diff_low=cv.ci_low, cv_diff_high=cv.ci_high,
        rmse_add=laws.loc["additive", "RMSE"], rmse_coupled=laws.loc["coupled", "RMSE"],
        seed_noise=result.seed_noise,
        spread_ratio=float((spread.seed_sd / spread.variance_term).median())
        if len(spread) else np.nan,
        **{f"{k}_{part}": getattr(v[k], part) for k in v
           for part in ("effect", "ci_low", "ci_high")},
        free_bound_share=result.free_E_bound_share, df=result.df,
        entropy_cv=held_out.effect, entropy_cv_low=held_out.ci_low,
        entropy_cv_high=held_out.ci_high,
        **profile_numbers(result.entropy_profile, result.eps, result.seed_noise),
        **schedule_numbers(result.schedule_check),
        coupling_margin=COUPLING_MARGIN, entropy_margin=ENTROPY_MARGIN, e_floor=E_FLOOR)


def profile_numbers(profile, eps: float, seed_noise: float) -> dict:
    """What the prose reads off the law's profile in E: its RMSE at eps (interpolated; NaN when
    eps lies outside the profile), its minimum and where, and the gap between the two in units
    of the seed-to-seed SD of log L."""
    at_eps = (float(np.interp(eps, profile.E, profile.rmse))
              if profile.E.min() <= eps <= profile.E.max() else np.nan)
    return dict(profile_at_eps=at_eps, profile_min=float(profile.rmse.min()),
                profile_argmin=float(profile.E[profile.rmse.idxmin()]),
                profile_gap_sd=(at_eps - float(profile.rmse.min())) / seed_noise
                if seed_noise > 0 else np.nan)


def schedule_numbers(check) -> dict:
    """The schedule check's largest gap between the two schedules (nats, wsd - cosine, signed)
    beside the spread between seeds under the cosine schedule (mean over D); NaN without a
    check."""
    if not len(check):
        return dict(schedule_gap=np.nan, schedule_gap_d=np.nan, schedule_seed_sd=np.nan,
                    schedule_gap_sds=np.nan)
    worst = check.loc[check.difference.abs().idxmax()]
    seed_sd = float(check.seed_sd.mean())
    return dict(schedule_gap=float(worst.difference), schedule_gap_d=int(worst.D),
                schedule_seed_sd=seed_sd,
                schedule_gap_sds=abs(float(worst.difference)) / seed_sd if seed_sd > 0 else np.nan)


def glued_texts(result) -> dict:
    """The phrases the prose glues besides the verdicts: where the free fit of E ends, and the
    executor the runs went to (as code)."""
    return {"free_fit_end": "ends at that bound" if result.free_E_at_bound
            else "stays above that bound",
            "executor": f"`{result.executor}`", "schedule": f"`{result.schedule}`",
            "schedule_reading": schedule_reading(schedule_numbers(result.schedule_check)),
            "coupling_reading": coupling_reading(result.verdict("coupling")),
            "returns_d_reading": returns_reading(result.returns_d, "D"),
            "returns_p_reading": returns_reading(result.returns_p, "P"),
            "regimes": regimes_text(result.cells)}


def regimes_text(cells) -> str:
    """Each size's regime at the largest D: converged (the last doubling of D moved the loss by
    less than the seed noise) or still learning, and whether the loss detectably still falls."""
    if "step_noise" not in cells:
        return "(not measured in this run)"
    parts = []
    for _, row in cells.drop_duplicates("P").sort_values("P").iterrows():
        state = "converged" if row.converged else "still learning"
        detect = ("detectably still falling" if row.still_falling
                  else "no fall detected")
        parts.append(f"P = {int(row.P):,} {state} (the last doubling of D lowered the loss by "
                     f"{row.last_step:.4f} ± {row.last_step_se:.4f} nats against a seed noise of "
                     f"{row.step_noise:.4f}; {detect})")
    return "; ".join(parts)


def coupling_reading(v) -> str:
    """What the interval of gamma says beside the verdict: whether it excludes 0 (a coupling
    the data detect, however small) and whether it lies inside the margin (small enough to
    count as additive)."""
    if not np.isfinite(v.effect):
        return "No coupling could be read from these runs."
    detected = v.ci_low > 0 or v.ci_high < 0
    inside = -COUPLING_MARGIN < v.ci_low and v.ci_high < COUPLING_MARGIN
    first = ("The interval excludes 0: the data term does depend on model size, as the paper's "
             "V(P, D) allows" if detected else
             "The interval contains 0: the data do not detect a coupling")
    second = (f"; it lies inside ±{COUPLING_MARGIN:g}, a factor of at most "
              f"{10 ** COUPLING_MARGIN:.2f} per decade of P, so the additive form holds as an "
              "approximation, which is what the verdict below reads." if inside else
              f"; it reaches beyond ±{COUPLING_MARGIN:g}, so the additive form is not shown to "
              "hold even as an approximation.")
    return first + second


def returns_reading(returns, along: str) -> str:
    """Whether each line of the returns-per-doubling figure falls (diminishing returns) or
    rises, from its first to its last step in ``along`` ("D" or "P"), naming every line that
    rises with its first and last gain (nats per doubling)."""
    other = "P" if along == "D" else "D"
    if not len(returns):
        return "there are too few grid points to tell"
    rising, lines = [], 0
    for key, line in returns.groupby(other):
        gains = line.sort_values(f"{along}_from").gain_per_doubling.to_numpy()
        if len(gains) < 2:
            continue
        lines += 1
        if gains[-1] > gains[0]:
            rising.append(f"{other} = {key:,.0f} ({gains[0]:.3f} to {gains[-1]:.3f})")
    if not lines:
        return f"each {other} has one step in {along} only, so no trend can be read"
    if not rising:
        return f"they diminish along every line ({lines} of {lines})"
    return (f"they diminish along {lines - len(rising)} of {lines} lines and grow along "
            f"{len(rising)}: " + ", ".join(rising))


def schedule_reading(numbers: dict) -> str:
    """What the schedule check says, from its largest gap in seed SDs (within 2: no more than
    a new seed would move the loss)."""
    sds = numbers["schedule_gap_sds"]
    if not np.isfinite(sds):
        return "no check was run (the cosine schedule has nothing to check)"
    if sds <= 2:
        return ("within twice the spread between seeds, so at this size the schedule moves the "
                "loss no more than a new seed would")
    return ("more than twice the spread between seeds, so at this size the schedule itself "
            "moves the loss by that much, and the laws describe students trained this way")
