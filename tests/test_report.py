"""Stored summaries: written atomically, read back, and a clear error when missing."""

import pytest

from scaling_utils.profiles import resolve_parameters
from scaling_utils.report import SummaryMissingError, load_summary, save_summary


def test_summary_round_trip_and_missing_summary_names_the_fix(tmp_path):
    cfg = resolve_parameters("theorem4_emergence", {"profile": "smoke"})
    save_summary(cfg, folder=tmp_path, exponent=-0.5, verdict="fails", count=3)
    assert load_summary("theorem4_emergence", "smoke", folder=tmp_path) == {
        "exponent": -0.5, "verdict": "fails", "count": 3.0}
    with pytest.raises(SummaryMissingError, match="-p profile cpu"):
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
