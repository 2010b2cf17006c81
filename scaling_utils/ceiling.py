"""The title question in numbers: the paper's conclusions (its Sections 5.3 and 6: diminishing
returns, a data term that dominates, resources for a higher SNR that "grow exponentially", data
limits, no absolute ceiling yet) read against what the book measured (Theorems 2 and 3, from
their stored results) and against published scaling laws (:mod:`.published`).

Along a law L(N, D) = E + A / N^alpha + B / D^beta with training compute C = 6 N D, the
compute-optimal allocation (Hoffmann et al. 2022, their eq. 4) is

    N*(C) = G (C/6)^a,  D*(C) = (C/6) / N*(C),  a = beta / (alpha + beta),
    G = (alpha A / (beta B))^(1 / (alpha + beta)),

and the reducible loss there falls as C^-(alpha beta / (alpha + beta)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd

from .published import LARGEST_RUN, PUBLISHED, TEXT_STOCK


@dataclass(frozen=True)
class ComputeOptimal:
    """The compute-optimal model size N, tokens D and loss of a law at compute C (FLOP)."""

    C: float
    N: float
    D: float
    loss: float
    floor: float  # the law's E

    @property
    def above_floor(self) -> float:
        """The reducible loss left at the optimum, L* - E (nats)."""
        return self.loss - self.floor


def _allocation_constant(law: Mapping) -> float:
    """G = (alpha A / (beta B))^(1 / (alpha + beta)), the prefactor of N*(C)."""
    alpha, beta = float(law["alpha"]), float(law["beta"])
    return (alpha * float(law["A"]) / (beta * float(law["B"]))) ** (1 / (alpha + beta))


def compute_optimal(law: Mapping, C: float) -> ComputeOptimal:
    """The compute-optimal point of ``law`` (E, A, B, alpha, beta) at compute ``C`` = 6 N D."""
    E, A, B, alpha, beta = (float(law[k]) for k in ("E", "A", "B", "alpha", "beta"))
    if C <= 0:
        raise ValueError(f"compute must be positive, got {C!r} FLOP")
    N = _allocation_constant(law) * (C / 6) ** (beta / (alpha + beta))
    D = C / (6 * N)
    return ComputeOptimal(C, N, D, E + A / N ** alpha + B / D ** beta, E)


def gain_per_doubling(law: Mapping, C: float) -> float:
    """Loss gained (nats) by doubling the compute from ``C``, both at the compute optimum."""
    return compute_optimal(law, C).loss - compute_optimal(law, 2 * C).loss


def reducible_exponent(law: Mapping) -> float:
    """The exponent c of the reducible loss along the optimum: L* - E ~ C^-c, c = ab/(a+b)."""
    alpha, beta = float(law["alpha"]), float(law["beta"])
    return alpha * beta / (alpha + beta)


def compute_to_halve(law: Mapping) -> float:
    """The compute multiple that halves the reducible loss along the optimum: 2^(1/c)."""
    return 2 ** (1 / reducible_exponent(law))


def compute_for_tokens(law: Mapping, D: float) -> float:
    """The compute whose optimal allocation trains on ``D`` tokens (inverse of D*(C))."""
    alpha, beta = float(law["alpha"]), float(law["beta"])
    return 6 * (D * _allocation_constant(law)) ** ((alpha + beta) / alpha)


def data_to_multiply_snr(exponent: float, factor: float = 2.0) -> float:
    """The data multiple that multiplies the SNR by ``factor`` when SNR ~ D^exponent: a power
    of the factor (polynomial growth of the resources), not an exponential in it."""
    return factor ** (1 / exponent) if exponent > 0 else math.inf


# The compute, as a multiple of the largest run's, at which the optimal tokens reach the stock
# of public text: at its central estimate and at the ends of its 90 % interval.
STOCK_COLUMNS = {"stock reached (x run)": "tokens", "stock low (x run)": "ci_low",
                 "stock high (x run)": "ci_high"}


def published_table(laws: Mapping[str, Mapping] = PUBLISHED, run: Mapping = LARGEST_RUN,
                    stock: Mapping = TEXT_STOCK) -> pd.DataFrame:
    """One row per published law at the largest published training run: its compute-optimal
    size, tokens and loss, the reducible loss left above its floor E, the loss gained by the
    next doubling of compute, the compute multiple that would halve the reducible loss, and the
    compute (as a multiple of the run's) whose optimal tokens reach the stock of public text."""
    rows = []
    for name, law in laws.items():
        at = compute_optimal(law, run["flop"])
        rows.append({"law": name, "floor E": at.floor, "optimal N": at.N, "optimal D": at.D,
                     "optimal loss": at.loss, "above the floor": at.above_floor,
                     "share above the floor": at.above_floor / at.loss,
                     "gain per doubling": gain_per_doubling(law, run["flop"]),
                     "compute to halve the rest": compute_to_halve(law),
                     **{column: compute_for_tokens(law, stock[q]) / run["flop"]
                        for column, q in STOCK_COLUMNS.items()}})
    return pd.DataFrame(rows)


def readings_table(d_exponent: float, ci_low: float, ci_high: float,
                   readings: Mapping[str, float]) -> pd.DataFrame:
    """The data multiple that doubles the SNR: at the measured exponent in D (its interval
    mapped through the monotone 2^(1/k)), and under each of the paper's readings."""
    rows = [{"SNR ~ D^k with": "k measured", "k": d_exponent,
             "data to double the SNR": data_to_multiply_snr(d_exponent),
             "ci_low": data_to_multiply_snr(ci_high), "ci_high": data_to_multiply_snr(ci_low)}]
    rows += [{"SNR ~ D^k with": name, "k": k, "data to double the SNR": data_to_multiply_snr(k),
              "ci_low": math.nan, "ci_high": math.nan} for name, k in readings.items()]
    return pd.DataFrame(rows)


def headroom_table(grid: pd.DataFrame, per_size: pd.DataFrame, ceiling: float) -> pd.DataFrame:
    """Per student size, at the grid's largest D: the whitened SNR (mean over seeds), its share
    of the ceiling any representation of the prefix can reach, the size's whitened exponent
    in D with its interval, and the data multiple that would reach the ceiling if that
    exponent held all the way, (ceiling / J)^(1/k) (the interval of k mapped through it)."""
    last = grid[grid.D == grid.D.max()].groupby("P").snr_white.mean()
    rows = []
    for row in per_size.sort_values("P").itertuples():
        j = float(last.loc[row.P])
        gap = ceiling / j if j > 0 else math.nan

        def multiple(k):  # 1 at or above the (estimated) ceiling; never with k <= 0
            if not (math.isfinite(gap) and math.isfinite(k)):
                return math.nan
            return 1.0 if gap <= 1 else gap ** (1 / k) if k > 0 else math.inf
        rows.append({"P": row.P, "whitened SNR": j, "share of the ceiling": j / ceiling,
                     "k (whitened)": row.whitened_exponent,
                     "data to reach the ceiling": multiple(row.whitened_exponent),
                     "ci_low": multiple(row.whitened_ci_high),
                     "ci_high": multiple(row.whitened_ci_low)})
    return pd.DataFrame(rows)


def data_term_share(cells: pd.DataFrame) -> pd.DataFrame:
    """Per model size, the data term V and the capacity term B at the smallest D (nats, with
    their intervals) and V's share of the reducible loss V + B there."""
    small = cells[cells.D == cells.D.min()].sort_values("P")
    return pd.DataFrame({"P": small.P.to_numpy(), "D": small.D.to_numpy(),
                         "V": small.variance_term.to_numpy(),
                         "V ci_low": small.variance_ci_low.to_numpy(),
                         "V ci_high": small.variance_ci_high.to_numpy(),
                         "B": small.bias.to_numpy(), "B ci_low": small.bias_ci_low.to_numpy(),
                         "B ci_high": small.bias_ci_high.to_numpy(),
                         "V share": (small.variance_term / (small.variance_term + small.bias))
                         .to_numpy()})


@dataclass(frozen=True)
class CeilingResult:
    """The title question's numbers: published laws at the largest published run, our
    students' returns and data-term shares, and the data that doubles the SNR."""

    published: pd.DataFrame  # :func:`published_table`
    returns_d: pd.DataFrame  # Theorem 2: loss gained per doubling of D, per size
    shares: pd.DataFrame  # :func:`data_term_share`
    snr: pd.DataFrame  # :func:`readings_table`
    # :func:`headroom_table` (empty for a Theorem 3 result stored before the whitened scale)
    headroom: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: tuple = ()  # the page reads the chapters' verdicts; it adds none of its own

    def numbers(self) -> dict:
        """Every number the page glues (keys prefixed ``t0c_``)."""
        hoffmann = self.published.set_index("law").loc["Hoffmann et al. 2022"]
        besiroglu = self.published.set_index("law").loc["Besiroglu et al. 2024"]
        r = self.returns_d
        last_p = r[r.P == r.P.max()].sort_values("D_from")
        shares = self.shares
        snr = self.snr.iloc[0]
        out = {
            "run_flop": LARGEST_RUN["flop"], "run_tokens": LARGEST_RUN["tokens"],
            "stock_tokens": TEXT_STOCK["tokens"], "stock_low": TEXT_STOCK["ci_low"],
            "stock_high": TEXT_STOCK["ci_high"],
            "returns_first": float(last_p.gain_per_doubling.iloc[0]),
            "returns_last": float(last_p.gain_per_doubling.iloc[-1]),
            "returns_diminish": int((r.groupby("P").gain_per_doubling
                                     .apply(lambda g: g.iloc[-1] < g.iloc[0])).sum()),
            "returns_sizes": int(r.P.nunique()),
            "share_smallest": float(shares["V share"].iloc[0]),
            "share_largest": float(shares["V share"].iloc[-1]),
            "v_largest": float(shares.V.iloc[-1]), "b_largest": float(shares.B.iloc[-1]),
            "v_largest_low": float(shares["V ci_low"].iloc[-1]),
            "v_largest_high": float(shares["V ci_high"].iloc[-1]),
            "b_largest_low": float(shares["B ci_low"].iloc[-1]),
            "b_largest_high": float(shares["B ci_high"].iloc[-1]),
            "snr_k": float(snr.k), "snr_data": float(snr["data to double the SNR"]),
            "snr_data_low": float(snr.ci_low), "snr_data_high": float(snr.ci_high),
        }
        if len(self.headroom):
            h = self.headroom.iloc[-1]  # the largest student
            out.update(headroom_share=float(h["share of the ceiling"]),
                       headroom_share_smallest=float(self.headroom["share of the ceiling"].iloc[0]),
                       headroom_k=float(h["k (whitened)"]),
                       headroom_data=float(h["data to reach the ceiling"]),
                       headroom_data_low=float(h.ci_low), headroom_data_high=float(h.ci_high))
        for key, row in (("h", hoffmann), ("b", besiroglu)):
            out.update({f"{key}_floor": row["floor E"], f"{key}_loss": row["optimal loss"],
                        f"{key}_above": row["above the floor"],
                        f"{key}_share": row["share above the floor"],
                        f"{key}_gain": row["gain per doubling"],
                        f"{key}_halve": row["compute to halve the rest"],
                        f"{key}_tokens": row["optimal D"],
                        f"{key}_stock_at": row["stock reached (x run)"],
                        f"{key}_stock_low": row["stock low (x run)"],
                        f"{key}_stock_high": row["stock high (x run)"]})
        return {f"t0c_{k}": v for k, v in out.items()}

    def texts(self) -> dict:
        """Large counts as the prose writes them (``3.8 × 10²⁵``), keys prefixed ``t0c_``."""
        n = self.numbers()
        keys = ("run_flop", "run_tokens", "stock_tokens", "stock_low", "stock_high", "h_tokens",
                "b_tokens")
        keys += ("headroom_data", "headroom_data_low", "headroom_data_high") \
            if "t0c_headroom_data" in n else ()
        out = {f"t0c_{k}_text": powers_of_ten(n[f"t0c_{k}"]) for k in keys}
        out.update(t0c_variance_reading=self.variance_reading(),
                   t0c_returns_reading=self.returns_reading())
        if len(self.headroom):
            out.update(t0c_headroom_reading=self.headroom_reading())
        return out

    def headroom_reading(self) -> str:
        """Where the largest student stands against its language's ceiling, and what a doubling
        of its data buys there (2^k on the whitened SNR)."""
        h = self.headroom.iloc[-1]
        share, k = h["share of the ceiling"], h["k (whitened)"]
        where = ("far below the limit its language sets" if share < 0.25 else
                 "part of the way to the limit its language sets" if share < 0.75 else
                 "near the limit its language sets")
        return (f"the largest student is {where}, and each doubling of its data multiplies its "
                f"whitened SNR by {2 ** k:.2f}")

    def variance_reading(self) -> str:
        """Whether the data term dominates the capacity term at the largest size and smallest
        D: only when their 95 % intervals do not overlap is either said to be larger."""
        last = self.shares.iloc[-1]
        if last["V ci_low"] > last["B ci_high"]:
            return "there it dominates"
        if last["V ci_high"] < last["B ci_low"]:
            return "in this grid it does not dominate"
        return "their intervals overlap, so the grid cannot tell which dominates"

    def returns_reading(self) -> str:
        """Whether the loss gained per doubling of D falls or grows over the grid at the
        largest size (first doubling to last)."""
        gains = self.returns_d[self.returns_d.P == self.returns_d.P.max()].sort_values(
            "D_from").gain_per_doubling
        if gains.iloc[-1] < gains.iloc[0]:
            return "falls, as diminishing returns would have it"
        return ("grows: runs this small and short sit on the early, steep part of their curves, "
                "before a power law's diminishing returns set in")


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def powers_of_ten(x: float, digits: int = 3) -> str:
    """``x`` as ``m × 10ᵉ`` in plain text (Unicode superscripts: no math in glued text); an
    infinite or missing ``x`` (a multiple that no exponent above 0 gives) in words."""
    if math.isinf(x):
        return "infinitely many"
    if not math.isfinite(x) or x == 0:
        return "an unknown number of" if not math.isfinite(x) else "0"
    exponent = math.floor(math.log10(abs(x)))
    mantissa = float(f"{x / 10 ** exponent:.{digits}g}")
    if mantissa >= 10:  # rounding carried into the next power
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:g} × 10{str(exponent).translate(_SUPERSCRIPTS)}"


def study(cfg, folder=None) -> CeilingResult:
    """Read Theorems 2 and 3's stored results at ``cfg.profile`` and ``cfg.seed`` and compute
    the title question's numbers beside the published laws'."""
    from .chapters.t3_snr import D_READINGS
    from .report import load_result

    t2 = load_result("theorem2_bias_variance", cfg.profile, folder, cfg.seed)
    t3 = load_result("theorem3_snr", cfg.profile, folder, cfg.seed)
    data = t3.exponents.set_index("exponent").loc["data"]
    labels = {"data": "k = 1 (the statement)", "data_proof": "k = 2 (its proof)",
              "data_appendix": "k = 3 (Appendix C.2)"}
    headroom = (headroom_table(t3.grid, t3.per_size, float(t3.references.snr_white.iloc[0]))
                if "data_whitened" in set(t3.exponents.exponent) else pd.DataFrame())
    return CeilingResult(published_table(), t2.returns_d, data_term_share(t2.cells),
                         readings_table(float(data.estimate), float(data.ci_low),
                                        float(data.ci_high),
                                        {labels[k]: v for k, v in D_READINGS.items()}),
                         headroom)
