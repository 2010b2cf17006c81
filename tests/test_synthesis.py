"""The pages that relate the chapters read the stored typed results: every verdict reaches the
overview table, the chain keeps the paper's order, and the weakest link is computed."""

from dataclasses import dataclass

from scaling_utils import synthesis, verdicts
from scaling_utils.profiles import resolve_parameters
from scaling_utils.report import save_summary


@dataclass(frozen=True)
class StoredChapter:  # stands for a chapter's result type
    verdicts: tuple


StoredChapter.__module__ = "scaling_utils.synthesis"


def store(tmp_path, monkeypatch, words):
    monkeypatch.setattr(synthesis, "StoredChapter", StoredChapter, raising=False)
    for notebook, keys in words.items():
        found = tuple(verdicts.above(key, f"claim {key}", *effect, 0.0, "more data")
                      for key, effect in keys.items())
        save_summary(resolve_parameters(notebook, {"profile": "smoke"}), folder=tmp_path,
                     result=StoredChapter(found))


SUPPORTED, OPEN, BROKEN = (1, 0.5, 1.5), (0, -1, 1), (-1, -1.5, -0.5)


def test_overview_and_chain_read_every_stored_verdict(tmp_path, monkeypatch):
    store(tmp_path, monkeypatch, {
        "theorem1_clt": {"rate": SUPPORTED, "control": SUPPORTED},
        "theorem2_bias_variance": {"capacity": BROKEN, "coupling": OPEN, "entropy": OPEN},
        "theorem3_snr": {"data": OPEN, "size": SUPPORTED},
        "theorem4_emergence": {"threshold_copy": SUPPORTED, "collapse": BROKEN}})
    by_chapter = synthesis.chapter_verdicts("smoke", folder=tmp_path)
    table = synthesis.overview_table(by_chapter)
    assert len(table) == 9 and set(table.verdict) == {"supported", "undetermined", "contradicted"}
    assert table.loc[table.verdict == "undetermined", "what would decide it"].eq("more data").all()
    cfg = resolve_parameters("integration", {"profile": "smoke"})
    result = synthesis.study(cfg, folder=tmp_path)
    assert [v.key for v in result.chain] == ["rate", "data", "size", "threshold_copy", "collapse",
                                             "capacity", "coupling", "entropy"]
    assert result.weakest.key == "collapse"  # the first contradicted link in the paper's order
    assert "collapse" in synthesis.weakest_sentence(result.weakest)
    assert result.counts == {"supported": 3, "contradicted": 2, "undetermined": 3}
