"""Theorem 1's ``study``: the captures of the i.i.d. control, the random twin, the trained model
(last token and fixed final token) and optionally the students, and the typed result the page
shows, glues and stores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..base import ChapterResult, says_what_was_cached
from . import text
from .estimators import (DESIGN_CELLS, DESIGN_MODELS, DESIGN_TEXTS, FIXED, IID_CONTROL,
                         LAST_TOKEN, TWIN, PositionLoss, PrecisionCheck, design_table,
                         effective_context_table, gaussian_evidence, gaussianity, length_grid,
                         local_exponents, position_loss, precision_check, student_fits, summarise_fits,
                         tested_sites, variance_scaling, window_subsets)
from .rules import (GAUSS_NULL, decide_control, decide_gaussian, decide_last_token,
                    decide_rate, decide_residual, decide_twin, gaussian_power, measured_on)
from .worlds import WORLD_LAYERS, causal_average_exponents, rule_error_rates

CLT_VERSION = 3  # bump when a change here changes the stored captures or tables
# The random twin reads i.i.d. windows drawn with the seed after the run's seed, so that they
# are not the same draw as the real windows of the trained model.
IID_WINDOWS_SEED_OFFSET = 1
SHUFFLE_SEED_OFFSET = 2  # and the shuffled windows are permuted with the seed after that
# The depths of the causal-average worlds the local exponents are read against (the last: the
# offline model's layers), and how far in n those worlds are followed (past any profile's n).
DEPTH_WORLDS = (1, 3, 8, WORLD_LAYERS)
DEPTH_WORLD_LENGTH = 2 ** 20


@dataclass(frozen=True, kw_only=True)
class Theorem1Result(ChapterResult):
    """Everything the Theorem 1 page shows: the tables, the few settings its prose quotes, and
    the verdicts (headline ``rate`` first); the glued numbers and texts are derived from them."""

    PREFIX = "t1"
    profile: str
    description: str  # one line: profile, context lengths, windows, model and corpus
    lengths: np.ndarray
    model: str
    corpus: str
    fits: pd.DataFrame  # one row per (variant, site): exponent, interval, reading
    curves: pd.DataFrame  # variance per (variant, site, n)
    fit_summary: pd.DataFrame  # per (variant, kind): median over layers with interval, layer 0, readings
    window_subsets: pd.DataFrame  # the headline exponent on all windows and on disjoint subsets
    local_exponents: pd.DataFrame  # per variant, the attention exponent between neighbouring n
    depth_worlds: pd.DataFrame  # the same in worlds of k causal averages (CLT exact in the limit)
    design: pd.DataFrame  # model x text x first token: exponent, last local exponent, sink share
    design_local: pd.DataFrame  # every design cell's local exponents against n
    without_massive: pd.DataFrame  # block fits of the last-token capture without massive dims
    effective_context: pd.DataFrame  # n_eff per (variant, layer, n), sink mass
    neff_curves: pd.DataFrame  # attention variance of the trained model against n_eff
    neff_fits: pd.DataFrame
    gaussianity: pd.DataFrame
    position_loss: PositionLoss
    precision: PrecisionCheck | None  # None: every pass ran in float32
    students: pd.DataFrame  # per student and kind: median exponent over layers (empty if not run)
    student_context: int | None  # the students' context; None when they were not run
    error_rates: pd.DataFrame  # each rule's verdicts on simulated worlds (``worlds``)
    fit_from: int
    n_windows: int
    n_groups: int
    exclude_top_dims: int
    world_sets: int

    def _numbers(self) -> dict:
        return text.numbers(self)

    def _texts(self) -> dict:
        return text.texts(self)

    def summary(self) -> dict:
        """The headline numbers stored for the pages that relate the theorems."""
        rate, control = self.verdict("rate"), self.verdict("control")
        n = self._numbers()
        return dict(rate_exponent=rate.effect, rate_ci_low=rate.ci_low, rate_ci_high=rate.ci_high,
                    control_exponent=control.effect, control_ci_low=control.ci_low,
                    control_ci_high=control.ci_high,
                    trained_attention_median=n["headline_exponent"] if np.isfinite(rate.effect)
                    else n["last_attention_exponent"],
                    trained_block_median=n["last_block_exponent"],
                    trained_share_consistent=n["headline_share_consistent"],
                    kaplan_alpha=self.position_loss.alpha, kaplan_ci_low=self.position_loss.ci_low,
                    kaplan_ci_high=self.position_loss.ci_high, n_eff_ratio=n["neff_ratio_trained"],
                    verdict={"supported": "holds", "contradicted": "fails"}.get(rate.word, rate.word))


@says_what_was_cached
def study(cfg) -> Theorem1Result:
    """Run the Theorem 1 chapter for a notebook configuration (``resolve_parameters``): the
    i.i.d. control, the random twin, the trained model (last token and fixed final token), and
    optionally the students; every capture is cached by its windows, model and settings."""
    from ...cache import array_digest, cached
    from ...capture import capture_statistics
    from ...data import (iid_windows, load_corpus, random_windows, shuffled_windows, tokenize,
                         with_first_token)
    from ...models import load_model, matmul_precision, random_twin
    from ...synthetic import iid_attention_control

    lengths = length_grid(cfg.min_length, cfg.max_length)
    control_lengths = length_grid(cfg.min_length, cfg.synthetic_max_length)
    control_key = {k: cfg.values[k] for k in ("seed", "synthetic_samples", "synthetic_dim",
                                              "n_groups", "n_projections")}
    control = cached("theorem1/control", dict(control_key, lengths=control_lengths.tolist(),
                                              version=CLT_VERSION),
                     lambda: iid_attention_control(cfg.synthetic_samples, control_lengths,
                                                   dim=cfg.synthetic_dim, seed=cfg.seed,
                                                   n_groups=cfg.n_groups,
                                                   n_projections=cfg.n_projections))
    lm = load_model(cfg.model, device=cfg.device, attn_implementation="eager")
    lm.check_context(cfg.max_length)
    corpus = load_corpus(cfg.corpus)
    tokens = tokenize(corpus, lm.tokenizer)
    windows = random_windows(tokens, cfg.n_windows, cfg.max_length, cfg.seed)

    def capture(model, ids, part, precision="float32", **options):
        key = dict(model=lm.name, weights=lm.digest, windows_digest=array_digest(ids), part=part,
                   precision=precision, windows=len(ids), lengths=lengths.tolist(),
                   version=CLT_VERSION,
                   **{k: cfg.values[k] for k in ("seed", "n_windows", "max_length", "n_groups",
                                                  "n_projections")})

        def run():
            with matmul_precision(precision):
                return capture_statistics(model, ids, lengths, batch_size=cfg.batch_size,
                                          n_groups=cfg.n_groups, n_projections=cfg.n_projections,
                                          seed=cfg.seed, progress=False, **options)
        return cached("theorem1/capture", key, run)

    used_precision, check, main_lm = "float32", None, lm
    if cfg.precision != "float32":  # used only if it leaves the exponents unchanged on a subset
        reduced = lm if cfg.precision == "tf32" else load_model(
            cfg.model, device=cfg.device, attn_implementation="eager", precision=cfg.precision)
        subset = windows[: max(cfg.n_groups, cfg.n_windows // 4)]
        check = precision_check(capture(reduced.model, subset, "precision-check", cfg.precision),
                                capture(lm.model, subset, "precision-check"), cfg.precision,
                                fit_from=cfg.fit_from)
        if check.unchanged:
            used_precision, main_lm = cfg.precision, reduced
    trained = capture(main_lm.model, windows, "trained", used_precision, attention_weights=True,
                      position_loss=True)
    captures = {IID_CONTROL: control}
    iid = iid_windows(tokens, cfg.n_windows, cfg.max_length, cfg.seed + IID_WINDOWS_SEED_OFFSET)
    twin = random_twin(main_lm, cfg.seed).model
    if cfg.random_twin_control:
        captures[TWIN] = capture(twin, iid, "random-twin-iid", used_precision,
                                 attention_weights=True)
    captures[LAST_TOKEN] = trained
    if cfg.fixed_query:
        query_token = int(lm.tokenizer(" the", add_special_tokens=False)["input_ids"][-1])
        captures[FIXED] = capture(main_lm.model, windows, f"fixed-query-{query_token}",
                                  used_precision, fixed_query_token=query_token)
    design = {}
    if cfg.text_design:  # both models on real, shuffled and i.i.d. text; the sink fixed
        first = (lm.tokenizer.bos_token_id if lm.tokenizer.bos_token_id is not None
                 else lm.tokenizer.eos_token_id)
        texts = dict(zip(DESIGN_TEXTS, (windows, shuffled_windows(windows, cfg.seed +
                                                                    SHUFFLE_SEED_OFFSET), iid)))
        models = dict(zip(DESIGN_MODELS, (main_lm.model, twin)))
        measured = {("trained", "real text", "as drawn"): trained,
                    ("random twin", "i.i.d. tokens", "as drawn"): captures.get(TWIN)}
        for cell in DESIGN_CELLS:
            model, text, first_token = cell
            ids = texts[text][: cfg.design_windows]
            design[cell] = measured.get(cell) or capture(
                models[model], with_first_token(ids, first) if first_token == "fixed" else ids,
                "design-" + "-".join(cell), used_precision, attention_weights=True)
    students = _students(cfg) if cfg.student_family else None
    rates = rule_error_rates(cfg.values, cfg.world_sets, cfg.seed)
    return _analyse(rates, cfg, captures, design, lengths, check, students, model=f"{lm.name}",
                    corpus=f"{corpus.name}", license=corpus.license, n_tokens=len(tokens),
                    n_parameters=lm.n_parameters, device=str(lm.device))


def _students(cfg) -> tuple[int, pd.DataFrame | None]:
    """Variance fits of the Theorem 2 students (largest D of the profile, this seed), with
    the lengths n >= fit_from like every other fit: their context and their medians, None
    when the students' context leaves fewer than two such lengths."""
    from ... import train
    from ...runs import run_grid
    from ...profiles import student_grid_values

    values = student_grid_values(cfg.profile, cfg.seed)
    if (length_grid(cfg.min_length, values["context"]) >= cfg.fit_from).sum() < 2:
        return (values["context"], None)
    grid = train.known_language(values)
    largest = [c for c in train.StudentGrid.from_values(values, grid.source.n_symbols).configs()
               if c.D == max(values["D"]) and c.data_mode == "fresh"
               and c.seed == train.training_seeds(cfg.seed, values["n_seeds"])[0]]
    runs = run_grid(largest, grid.source, grid.eval_tokens, device=cfg.device,
                          progress=False)  # the Theorem 2 runs: cached, shared
    _, medians = student_fits(runs, grid.source, cfg.n_windows, cfg.min_length, cfg.n_groups,
                              cfg.seed, cfg.device, cfg.fit_from)
    return (values["context"], medians)


def _analyse(rates, cfg, captures: dict, design: dict, lengths, check, students,
             **about) -> Theorem1Result:
    """Tables and verdicts from the captures (no forward pass)."""
    fit = dict(fit_from=cfg.fit_from)
    scaling = {name: variance_scaling(r, **fit) for name, r in captures.items()}
    fits = pd.concat([s.fits.assign(variant=name) for name, s in scaling.items()], ignore_index=True)
    curves = pd.concat([s.curves.assign(variant=name) for name, s in scaling.items()],
                       ignore_index=True)
    medians = pd.concat([s.medians.assign(variant=name) for name, s in scaling.items()],
                        ignore_index=True)

    def median_of(variant, kind):
        rows = medians.query("variant == @variant and kind == @kind")
        return None if rows.empty else rows.iloc[0].to_dict()

    fitted = curves[curves.n >= cfg.fit_from].groupby("variant").n.agg(["min", "max"])

    def worded(verdict, variant):  # the claim with the n range, model and text it was read on
        low, high = fitted.loc[variant] if variant in fitted.index else (np.nan, np.nan)
        return measured_on(verdict, low, high, about["model"], about["corpus"])

    gauss = gaussianity({name: (r, tested_sites(r)) for name, r in captures.items()},
                        n_null=GAUSS_NULL, seed=cfg.seed)
    evidence = gaussian_evidence(gauss, FIXED)
    power, needed = (gaussian_power(evidence["windows"], evidence["directions"])
                     if evidence["directions"] else (np.nan, None))
    verdicts = (worded(decide_rate(median_of(FIXED, "attention")), FIXED),
                measured_on(decide_gaussian(power=power, windows_needed=needed, **evidence),
                            lengths.max(), lengths.max(), about["model"], about["corpus"]),
                worded(decide_last_token(median_of(LAST_TOKEN, "attention")), LAST_TOKEN),
                worded(decide_residual(median_of(FIXED, "block")), FIXED),
                worded(decide_control(median_of(IID_CONTROL, "attention")), IID_CONTROL),
                worded(decide_twin(median_of(TWIN, "attention")), TWIN))
    trained = captures[LAST_TOKEN]
    by_neff = variance_scaling(trained, against="n_eff", **fit)
    context, student_medians = students if students is not None else (None, None)
    design_cells, design_local = (design_table(design, cfg.fit_from) if design
                                  else (pd.DataFrame(), pd.DataFrame()))
    description = (f"profile: {cfg.profile}   context lengths n: {lengths.tolist()}   windows: "
                   f"{cfg.n_windows}   model: {about['model']} ({about['n_parameters'] / 1e6:.1f} M "
                   f"parameters, {about['device']})   corpus: {about['corpus']} "
                   f"({about['n_tokens']:,} tokens; {about['license']})")
    return Theorem1Result(
        profile=cfg.profile, description=description, lengths=lengths, model=about["model"],
        corpus=about["corpus"], fits=fits, curves=curves,
        fit_summary=summarise_fits(fits, medians),
        window_subsets=window_subsets(captures.get(FIXED), cfg.n_groups, cfg.fit_from),
        local_exponents=pd.concat([local_exponents(r).assign(variant=name)
                                   for name, r in captures.items()], ignore_index=True),
        depth_worlds=causal_average_exponents(
            DEPTH_WORLDS, length_grid(cfg.min_length, max(cfg.max_length, DEPTH_WORLD_LENGTH))),
        design=design_cells, design_local=design_local,
        without_massive=variance_scaling(trained, exclude_top_dims=cfg.exclude_top_dims,
                                         **fit).fits,
        effective_context=pd.concat([effective_context_table(r).assign(variant=name)
                                     for name, r in captures.items() if r.n_eff is not None],
                                    ignore_index=True),
        neff_curves=by_neff.curves, neff_fits=by_neff.fits,
        gaussianity=gauss,
        position_loss=position_loss(trained, n_boot=min(cfg.n_boot, 200), seed=cfg.seed),
        precision=check,
        students=pd.DataFrame() if student_medians is None else student_medians,
        student_context=context, error_rates=rates, fit_from=cfg.fit_from,
        n_windows=cfg.n_windows, n_groups=cfg.n_groups, exclude_top_dims=cfg.exclude_top_dims,
        world_sets=cfg.world_sets, verdicts=verdicts)
