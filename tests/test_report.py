"""Stored summaries: written atomically as strict JSON, read back, refused when edited or
truncated, and a clear error when missing."""

import json
import math

import pytest

from scaling_utils.profiles import resolve_parameters
from scaling_utils.report import (NOT_A_NUMBER, SummaryCorruptError, SummaryMissingError,
                                  load_summary, save_summary)


def test_summary_round_trip_and_missing_summary_names_the_fix(tmp_path):
    cfg = resolve_parameters("theorem4_emergence", {"profile": "smoke"})
    save_summary(cfg, folder=tmp_path, exponent=-0.5, verdict="fails", count=3)
    assert load_summary("theorem4_emergence", "smoke", folder=tmp_path) == {
        "exponent": -0.5, "verdict": "fails", "count": 3.0}
    with pytest.raises(SummaryMissingError,
                       match=r"scripts/build_book.py --profile cpu --only theorem4_emergence"):
        load_summary("theorem4_emergence", "cpu", folder=tmp_path)


def test_a_changed_parameter_never_replaces_the_profile_summary(tmp_path):
    profile_run = resolve_parameters("theorem4_emergence", {"profile": "smoke", "device": "cpu"})
    assert profile_run.variant == ""  # where it ran does not change what it measured
    save_summary(profile_run, folder=tmp_path, exponent=-1.0)
    sweep_run = resolve_parameters("theorem4_emergence", {"profile": "smoke", "modulus": 11})
    assert sweep_run.variant != ""
    save_summary(sweep_run, folder=tmp_path, exponent=-0.2)
    assert load_summary("theorem4_emergence", "smoke", folder=tmp_path) == {"exponent": -1.0}
    assert load_summary("theorem4_emergence", f"smoke-{sweep_run.variant}",
                        folder=tmp_path) == {"exponent": -0.2}


def test_summaries_are_strict_json_with_a_reason_for_each_missing_number(tmp_path):
    cfg = resolve_parameters("theorem4_emergence", {"profile": "smoke"})
    save_summary(cfg, folder=tmp_path, reasons={"skipped": "not run in this profile"},
                 skipped=float("nan"), unfit=float("nan"), value=1.5)
    path = tmp_path / "summaries" / "theorem4_emergence-smoke.json"
    record = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert record["values"] == {"skipped": None, "unfit": None, "value": 1.5}
    assert record["missing"] == {"skipped": "not run in this profile", "unfit": NOT_A_NUMBER}
    back = load_summary("theorem4_emergence", "smoke", folder=tmp_path)
    assert math.isnan(back["skipped"]) and back["value"] == 1.5


def test_an_edited_or_truncated_summary_is_refused_naming_the_rebuild(tmp_path):
    cfg = resolve_parameters("theorem2_bias_variance", {"profile": "smoke"})
    save_summary(cfg, folder=tmp_path, eps=3.06)
    path = tmp_path / "summaries" / "theorem2_bias_variance-smoke.json"
    text = path.read_text()
    path.write_text(text.replace("3.06", "123"))
    with pytest.raises(SummaryCorruptError, match=r"does not match its digest.*--only theorem2_bias_variance"):
        load_summary("theorem2_bias_variance", "smoke", folder=tmp_path)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(SummaryCorruptError, match=r"summaries/theorem2_bias_variance-smoke.json cannot be read"):
        load_summary("theorem2_bias_variance", "smoke", folder=tmp_path)



def test_a_typed_result_is_stored_with_its_verdicts_and_checked_on_read(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from scaling_utils import verdicts
    from scaling_utils.report import load_result

    @dataclass(frozen=True)
    class ChapterResult:  # stands for a chapter's result type, which lives in the package
        verdicts: tuple
        exponent: float

    ChapterResult.__module__, ChapterResult.__qualname__ = "scaling_utils.verdicts", "ChapterResult"
    monkeypatch.setattr(verdicts, "ChapterResult", ChapterResult, raising=False)
    verdict = verdicts.above("data", "SNR grows with D", 0.9, 0.7, 1.1, 0.0, "more seeds")
    cfg = resolve_parameters("theorem3_snr", {"profile": "smoke"})
    save_summary(cfg, folder=tmp_path, result=ChapterResult((verdict,), 2.5), d_exponent=0.9)
    values = load_summary("theorem3_snr", "smoke", folder=tmp_path)
    assert values["verdicts"] == {"data": "supported"} and values["d_exponent"] == 0.9
    assert load_result("theorem3_snr", "smoke", folder=tmp_path) == ChapterResult((verdict,), 2.5)
    path = tmp_path / "summaries" / "theorem3_snr-smoke.result.npz"
    save_summary(cfg, folder=tmp_path, result=ChapterResult((verdict,), 3.5))
    other_run = path.read_bytes()
    save_summary(cfg, folder=tmp_path, result=ChapterResult((verdict,), 2.5))
    path.write_bytes(other_run)  # a result from another run beside this summary
    with pytest.raises(SummaryCorruptError, match="does not match its summary's digest"):
        load_result("theorem3_snr", "smoke", folder=tmp_path)


def test_pages_read_the_seed_they_are_asked_for_and_say_what_they_read(tmp_path, monkeypatch):
    from scaling_utils.report import SummaryMixedError, provenance, stored_name

    for seed in (0, 1):
        cfg = resolve_parameters("theorem3_snr", {"profile": "smoke", "seed": seed})
        assert stored_name("theorem3_snr", "smoke", seed) == "smoke" + (f"-{cfg.variant}" if seed else "")
        save_summary(cfg, folder=tmp_path, d_exponent=0.5 + seed)
    assert load_summary("theorem3_snr", "smoke", folder=tmp_path, seed=1)["d_exponent"] == 1.5
    assert load_summary("theorem3_snr", "smoke", folder=tmp_path)["d_exponent"] == 0.5
    table = provenance(["theorem3_snr"], "smoke", 1, folder=tmp_path)
    assert list(table.seed) == [1] and table["stored as"][0].startswith("smoke-")
    monkeypatch.setattr("scaling_utils.runinfo.git_commit", lambda: "abc1234")
    save_summary(resolve_parameters("theorem2_bias_variance", {"profile": "smoke"}), folder=tmp_path,
                 eps=3.0)
    with pytest.raises(SummaryMixedError, match="different commits"):
        provenance(["theorem2_bias_variance", "theorem3_snr"], "smoke", folder=tmp_path)
    # a seed not run yet names the command that runs it
    with pytest.raises(SummaryMissingError, match="run --profile smoke theorem1_clt -p seed=2"):
        provenance(["theorem1_clt"], "smoke", 2, folder=tmp_path)
    assert len(provenance(["theorem2_bias_variance", "theorem3_snr"], "smoke", folder=tmp_path,
                          allow_mixed=True)) == 2


def test_tables_on_the_page_have_headers_in_words_and_yes_or_no():
    import pandas as pd

    from scaling_utils.report import show_table
    html = show_table(pd.DataFrame({"gain_per_doubling": [0.0123456], "converged": [True],
                                    "P": [1048]})).to_html()
    assert "gain per doubling" in html and "gain_per_doubling" not in html
    assert ">yes<" in html and "True" not in html and "1,048" in html and "0.0123" in html
