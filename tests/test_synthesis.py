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
        "theorem3_snr": {"data": OPEN, "data_proof": BROKEN, "size": SUPPORTED},
        "theorem4_emergence": {"abrupt_copy": SUPPORTED, "collapse": BROKEN}})
    by_chapter = synthesis.chapter_verdicts("smoke", folder=tmp_path)
    table = synthesis.overview_table(by_chapter)
    assert len(table) == 10 and set(table.verdict) == {"supported", "undetermined", "contradicted"}
    assert table.loc[table.verdict == "undetermined", "what would decide it"].eq("more data").all()
    cfg = resolve_parameters("integration", {"profile": "smoke"})
    result = synthesis.study(cfg, folder=tmp_path)
    assert [v.key for v in result.chain] == ["rate", "data", "size", "abrupt_copy", "collapse",
                                             "capacity", "coupling", "entropy"]
    assert result.weakest.key == "collapse"  # the first contradicted link in the paper's order
    assert "collapse" in synthesis.weakest_sentence(result.weakest)
    assert result.counts == {"supported": 3, "contradicted": 2, "undetermined": 3}


def test_the_answer_counts_only_the_papers_claims(tmp_path, monkeypatch):
    store(tmp_path, monkeypatch, {
        "theorem1_clt": {"rate": BROKEN, "control": SUPPORTED, "twin": SUPPORTED},
        "theorem2_bias_variance": {"capacity": SUPPORTED, "coupling": SUPPORTED},
        "theorem3_snr": {"data": OPEN, "data_appendix": BROKEN},
        "theorem4_emergence": {"shared_copy": OPEN, "metric": SUPPORTED}})
    by_chapter = synthesis.chapter_verdicts("smoke", folder=tmp_path)
    table = synthesis.overview_table(by_chapter)
    assert [v.key for v in synthesis.paper_claims(by_chapter)] == ["rate", "capacity", "data",
                                                                   "shared_copy"]
    roles = dict(zip(table.claim, table.role))
    assert roles["claim control"] == roles["claim twin"] == verdicts.CONTROL
    assert roles["claim coupling"] == roles["claim metric"] == verdicts.CHECK
    assert roles["claim shared_copy"] == verdicts.PAPER  # the family's role
    assert roles["claim data_appendix"] == verdicts.READING  # its own role, not the family's
    answer = synthesis.at_a_glance(table)
    assert "**Supported: 1 of 4.** Thm 2: claim capacity" in answer
    assert "**Contradicted: 1 of 4.** Thm 1: claim rate" in answer
    assert "**Undetermined: 2 of 4.**" in answer and "would be told by more data" in answer
    assert "control" not in answer and "coupling" not in answer and "metric" not in answer
    assert "data_appendix" not in answer


def test_every_verdict_key_of_every_chapter_has_a_role():
    import pytest

    from scaling_utils.chapters import chapters
    keys = {"theorem1_clt": ["rate", "last_token", "residual", "control", "twin"],
            "theorem2_bias_variance": ["capacity", "coupling", "entropy"],
            "theorem3_snr": ["data", "data_proof", "data_appendix", "size", "context"],
            "theorem4_emergence": ["abrupt_copy", "shared_modular", "collapse", "metric",
                                   "mechanism_copy"]}
    for entry in chapters():
        for key in keys[entry.notebook]:
            assert verdicts.role_of(entry.roles, key) in verdicts.ROLES
    with pytest.raises(KeyError, match="rules.ROLES"):
        verdicts.role_of({"rate": verdicts.PAPER}, "unknown")


def test_an_estimate_outside_its_interval_is_printed_as_such():
    inside = verdicts.near("entropy", "claim", 0.01, -0.02, 0.03, 0.0, 0.1, "more data")
    outside = verdicts.near("entropy", "claim", -3.01, -3.08, -3.04, 0.0, 0.1, "more data",
                            replicates=100)
    assert synthesis.effect_text(inside) == "0.01 [-0.02, 0.03]"
    assert synthesis.effect_text(outside) == "-3.01, outside its own interval [-3.08, -3.04]"
    # too few replicates to hold anything (the smoke profile's context exponent): the same
    few = verdicts.near("context", "claim", -3.11, 0.13, 0.13, 0.0, 0.1, "more data", replicates=1)
    assert few.reason.startswith("only 1 bootstrap replicates")
    assert synthesis.effect_text(few) == "-3.11, outside its own interval [0.13, 0.13]"
    assert "-3.11 [" not in few.markdown()
    assert few.markdown().startswith("**undetermined**: -3.11, outside its own interval [0.13, 0.13]")


def test_a_chapter_sets_its_verdicts_beside_those_stored_at_other_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(synthesis, "StoredChapter", StoredChapter, raising=False)

    def chapter(**keys):
        return StoredChapter(tuple(verdicts.above(k, f"claim {k}", *e, 0.0, "more data")
                                   for k, e in keys.items()))

    cfg = resolve_parameters("theorem3_snr", {"profile": "smoke"})
    page = chapter(data=BROKEN, size=SUPPORTED)
    none = synthesis.seed_comparison(cfg, page, folder=tmp_path)
    assert none.others == () and none.missing == (1, 2)
    assert "No results at profile seeds 1 and 2" in none.reading
    assert "--grid seed=1,2" in none.reading
    # seed 1 stored (seed 2 not): one verdict agrees, one differs
    at_one = resolve_parameters("theorem3_snr", {"profile": "smoke", "seed": 1})
    save_summary(at_one, folder=tmp_path, result=chapter(data=BROKEN, size=OPEN))
    one = synthesis.seed_comparison(cfg, page, folder=tmp_path)
    assert one.others == (1,) and one.missing == (2,)
    assert list(one.table.columns) == ["verdict", "role", "seed 0", "seed 1"]
    assert one.table["seed 1"].tolist()[0].startswith("contradicted: -1")
    assert "same verdict as at seed 0 for 1 of 2 verdicts; they differ for `size`" in one.reading
    assert "Profile seed 2: not stored" in one.reading and "--grid seed=2" in one.reading
    # seed 1's data estimate (-1) lies inside seed 0's interval and vice versa; its size
    # estimate (0) lies outside seed 0's [0.5, 1.5], and seed 0's (1) inside seed 1's [-1, 1]
    assert "`size` at seed 1 (0) outside seed 0's [0.5, 1.5]" in one.reading
    assert "`data` at seed" not in one.reading and "`size` at seed 0" not in one.reading
    # a page at seed 1 looks at seeds 0 and 2
    assert synthesis.seed_comparison(at_one, page, folder=tmp_path).missing == (0, 2)


def test_an_effect_without_an_interval_says_so():
    v = verdicts.Verdict("k", "claim", verdicts.UNDETERMINED, 0.5, float("nan"), float("nan"),
                         "rule", "more data")
    assert synthesis.effect_text(v) == "0.5, no interval"
    assert v.markdown().startswith("**undetermined**: 0.50, no interval. Rule")
