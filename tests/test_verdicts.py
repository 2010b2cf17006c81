"""The three-word decision rules: each word reachable, edges decided as stated, and an
undetermined verdict always says what would decide it."""

import math

import numpy as np

import pytest

from scaling_utils import verdicts
from scaling_utils.verdicts import CONTRADICTED, SUPPORTED, UNDETERMINED


@pytest.mark.parametrize("low, high, word", [(0.2, 0.9, SUPPORTED), (-0.5, -0.1, CONTRADICTED),
                                             (-0.1, 0.4, UNDETERMINED)])
def test_above_reaches_every_word(low, high, word):
    v = verdicts.above("k", "grows", (low + high) / 2, low, high, 0.0, to_decide="more seeds")
    assert v.word == word


def test_below_mirrors_above():
    assert verdicts.below("k", "falls", -0.5, -0.9, -0.1, 0.0, "more").word == SUPPORTED
    assert verdicts.below("k", "falls", 0.5, 0.1, 0.9, 0.0, "more").word == CONTRADICTED


@pytest.mark.parametrize("low, high, word", [(0.9, 1.1, SUPPORTED), (0.3, 0.6, CONTRADICTED),
                                             (1.3, 1.6, CONTRADICTED), (0.7, 1.1, UNDETERMINED),
                                             (0.5, 1.5, UNDETERMINED)])
def test_near_is_an_equivalence_test(low, high, word):
    v = verdicts.near("k", "rate 1", (low + high) / 2, low, high, 1.0, 0.25, "more windows")
    assert v.word == word
    assert "1 ± 0.25" in v.rule


def test_missing_estimate_is_undetermined_with_its_reason():
    v = verdicts.above("k", "grows", math.nan, math.nan, math.nan, 0.0, "train longer")
    assert v.word == UNDETERMINED and math.isnan(v.effect)
    assert "train longer" in v.markdown()


def test_undetermined_must_say_what_decides_it():
    with pytest.raises(ValueError, match="decide"):
        verdicts.Verdict("k", "c", UNDETERMINED, 0.0, -1.0, 1.0, "rule")
    with pytest.raises(ValueError, match="one of"):
        verdicts.Verdict("k", "c", "holds", 0.0, -1.0, 1.0, "rule")


def test_words_and_table():
    vs = [verdicts.above("a", "A", 1, 0.5, 1.5, 0, "x"), verdicts.above("b", "B", 0, -1, 1, 0, "y")]
    assert verdicts.words(vs) == {"a": SUPPORTED, "b": UNDETERMINED}
    table = verdicts.verdict_table(vs)
    assert list(table.verdict) == [SUPPORTED, UNDETERMINED]
    assert table["to decide"].tolist() == ["", "y"]


def test_the_chain_breaks_at_its_first_contradicted_link_else_its_first_undetermined():
    ok = verdicts.above("a", "A", 1, 0.5, 1.5, 0, "x")
    open_ = verdicts.above("b", "B", 0, -1, 1, 0, "y")
    broken = verdicts.above("c", "C", -1, -1.5, -0.5, 0, "z")
    assert verdicts.weakest_link([ok, open_, broken]).key == "c"
    assert verdicts.weakest_link([ok, open_]).key == "b"
    assert verdicts.weakest_link([ok]) is None


def test_verdict_panels_draw_an_interval_that_misses_its_point():
    # a bootstrap percentile interval at a bound of its parameter can miss the point estimate
    # (Theorem 2's free E); the panel must still draw both
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scaling_utils import plots, verdicts
    v = verdicts.near("entropy", "E recovered", -3.01, -3.08, -3.04, 0.0, 0.1, "more data")
    fig, axes = plt.subplots(1, 1)
    plots.verdict_panels([v], np.array([axes]))
    xs = np.concatenate([line.get_xdata() for line in axes.lines])
    assert xs.min() == -3.08 and -3.01 in xs
    plt.close(fig)


def test_verdict_figure_lists_the_claims_with_no_effect_below_the_panels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scaling_utils import plots, verdicts
    measured = verdicts.above("size", "grows with P", 0.03, 0.02, 0.04, 0.0, "more sizes")
    missing = [verdicts.unavailable(f"k{i}", f"claim {i}", "no run learned it", "train longer")
               for i in range(2)]
    fig = plots.verdict_figure([missing[0], measured, missing[1]])
    panel, listing = fig.axes
    assert panel.get_title().startswith("grows with P") and len(panel.lines) >= 2
    text = listing.texts[0].get_text()
    assert "claim 0: no run learned it" in text and "claim 1" in text
    plt.close(fig)


def test_too_few_replicates_give_no_verdict_and_say_so():
    few = verdicts.MIN_REPLICATES - 1
    v = verdicts.above("k", "grows", 0.5, 0.2, 0.9, 0.0, "more seeds", replicates=few)
    assert v.word == UNDETERMINED and f"only {few} bootstrap replicates" in v.reason
    assert f"n_boot >= {verdicts.MIN_REPLICATES}" in v.to_decide and v.effect == 0.5
    enough = verdicts.above("k", "grows", 0.5, 0.2, 0.9, 0.0, "more", verdicts.MIN_REPLICATES)
    assert enough.word == SUPPORTED


@pytest.mark.parametrize("rule", [verdicts.above, verdicts.below])
def test_an_estimate_outside_its_own_interval_is_a_failed_interval(rule):
    # n_boot=1 once gave the "interval" [0.301, 0.301] around an estimate of 0.320
    v = rule("k", "c", 0.320, 0.301, 0.301, 0.0, "more", replicates=verdicts.MIN_REPLICATES)
    assert v.word == UNDETERMINED and v.reason.startswith(verdicts.FAILED_INTERVAL)
    assert "failed interval" in v.markdown() and "0.32" in v.markdown()
    assert "0.32 [0.30, 0.30]" not in v.markdown()  # never printed as if the interval held it
    near = verdicts.near("k", "c", -3.01, -3.08, -3.04, -3.0, 0.5, "more")
    assert near.word == UNDETERMINED and verdicts.FAILED_INTERVAL in near.reason
    # an estimate on an end (a fit at a bound, all replicates there too) is inside
    assert rule("k", "c", 0.301, 0.301, 0.301, 0.5, "more").reason == ""
