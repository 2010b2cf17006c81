"""Stored summaries: written atomically, read back, and a clear error when missing."""

import pytest

from scaling_utils.report import SummaryMissingError, load_summary, save_summary


def test_summary_round_trip_and_missing_summary_names_the_fix(tmp_path):
    save_summary("theorem9", "smoke", folder=tmp_path, exponent=-0.5, verdict="fails", count=3)
    assert load_summary("theorem9", "smoke", folder=tmp_path) == {
        "exponent": -0.5, "verdict": "fails", "count": 3.0}
    with pytest.raises(SummaryMissingError, match="-p profile cpu"):
        load_summary("theorem9", "cpu", folder=tmp_path)
