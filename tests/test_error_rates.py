"""The trust page's table: every chapter in the registry measured on its worlds, cached, the
same whether the worlds run one by one or as jobs on a pool."""

from scaling_utils import error_rates
from scaling_utils.chapters import Chapter
from scaling_utils.worlds import FAILS, HOLDS, World, measure
from test_worlds import mean_above_zero  # a rule with a known false rate


def _one_chapter(monkeypatch, worlds):
    entry = Chapter("theorem1_clt", "Thm 1", "1. A test chapter", lambda values: worlds, 0, {})
    monkeypatch.setattr(error_rates, "chapters", lambda: (entry,))


def test_study_measures_every_chapter_and_reads_the_worst_rule(monkeypatch, tmp_path):
    from types import SimpleNamespace

    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path))
    _one_chapter(monkeypatch, [World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 50)),
                               World("mean", "holds", HOLDS, "mean 1", mean_above_zero(1.0, 50))])
    result = error_rates.study(SimpleNamespace(profile="smoke", n_sets=40, seed=0, executor=None))
    assert list(result.table.world) == ["fails", "holds"]
    assert result.worst_world == "fails" and result.worst_rule == "Thm 1: mean"
    assert result.verdicts[0].key == "calibrated"
    again = error_rates.study(SimpleNamespace(profile="smoke", n_sets=40, seed=0,
                                              executor=None))  # cached
    assert again.table.equals(result.table)


def test_worlds_split_into_jobs_give_the_serial_table(monkeypatch, tmp_path):
    # jobs of 7 data sets on a pool of two: the rows must come back whole and in order
    from concurrent.futures import ThreadPoolExecutor

    from scaling_utils import worlds as harness

    worlds = [World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 50)),
              World("mean", "holds", HOLDS, "mean 1", mean_above_zero(1.0, 50)),
              World("mean", "near", HOLDS, "mean 0.3", mean_above_zero(0.3, 50))]
    _one_chapter(monkeypatch, worlds)
    monkeypatch.setattr(harness, "JOB_SETS", 7)
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path / "serial"))
    serial = error_rates.error_rate_table("smoke", 40, 3)
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path / "pool"))
    with ThreadPoolExecutor(2) as pool:
        pooled = error_rates.error_rate_table("smoke", 40, 3, pool)
    assert pooled.equals(serial)
    expected = measure(worlds, 40, 3, chapter="theorem1_clt")
    assert serial.drop(columns="chapter").equals(expected.drop(columns="chapter"))


def test_the_chapter_and_the_trust_page_share_one_computation(monkeypatch, tmp_path):
    from scaling_utils import cache

    # the chapter's values carry its own seed and world_sets, the trust page's its executor
    _one_chapter(monkeypatch, [World("mean", "holds", HOLDS, "mean 1", mean_above_zero(1.0, 50))])
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path))
    values = {"n_windows": 16, "profile": "smoke", "seed": 0, "world_sets": 40}
    by_chapter = error_rates.chapter_error_rates("theorem1_clt", {**values, "seed": 5}, 40)
    monkeypatch.setattr(error_rates, "measure", None)  # a second computation would fail
    by_trust = error_rates.chapter_error_rates("theorem1_clt", {**values, "executor": "x"}, 40)
    assert by_trust.equals(by_chapter)
    assert len(list((cache.cache_dir() / "error_rates").glob("*.npz"))) == 1
