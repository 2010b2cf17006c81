"""Notebook parameter validation: every mistake fails with a message naming it and the fix."""

import pytest

from scaling_utils.profiles import (NOTEBOOKS, PROFILE_NAMES, ParameterError, parameter_table,
                                    profile_values, resolve_parameters)


def _namespace(**given):
    names = {p.name: None for p in NOTEBOOKS["theorem1_clt"]}
    names.update(given)
    return names


def test_profile_fills_every_value_left_as_none():
    cfg = resolve_parameters("theorem1_clt", _namespace(profile="smoke"))
    assert cfg.profile == "smoke"
    assert cfg.values == {**profile_values("theorem1_clt", "smoke")}
    assert cfg.n_windows == profile_values("theorem1_clt", "smoke")["n_windows"]


def test_default_profile_is_cpu_and_overrides_win():
    cfg = resolve_parameters("theorem1_clt", _namespace(n_windows=12))
    assert cfg.profile == "cpu"
    assert cfg.n_windows == 12


def test_unknown_parameter_names_the_closest_valid_one():
    with pytest.raises(ParameterError, match=r"'n_window'.*did you mean 'n_windows'"):
        resolve_parameters("theorem1_clt", _namespace(n_window=3))


def test_names_defined_before_the_parameters_cell_are_ignored():
    namespace = _namespace(np=object(), _private=1, In=[])
    cfg = resolve_parameters("theorem1_clt", namespace, baseline={"np"})
    assert "np" not in cfg.values


@pytest.mark.parametrize("name,value,message", [
    ("n_windows", "many", "must be of type int"),
    ("n_windows", True, "must be of type int"),
    ("n_windows", 2, "must be >= 8"),
    ("fixed_query", 1, "must be of type bool"),
    ("profile", "laptop", "must be one of"),
    ("corpus", None, None),  # None means "use the profile"; allowed
])
def test_wrong_type_or_range_is_rejected(name, value, message):
    if message is None:
        resolve_parameters("theorem1_clt", _namespace(**{name: value}))
        return
    with pytest.raises(ParameterError, match=message):
        resolve_parameters("theorem1_clt", _namespace(**{name: value}))


def test_integral_float_is_accepted_as_int_and_int_as_float():
    cfg = resolve_parameters("theorem1_clt", _namespace(n_windows=16.0))
    assert cfg.n_windows == 16 and isinstance(cfg.n_windows, int)


def test_every_profile_value_passes_its_own_validation():
    for notebook in NOTEBOOKS:
        for profile in PROFILE_NAMES:
            names = {p.name: None for p in NOTEBOOKS[notebook]}
            resolve_parameters(notebook, {**names, "profile": profile})


def test_parameter_table_lists_every_parameter_with_profile_values():
    rows = parameter_table("theorem1_clt")
    assert [r["name"] for r in rows] == [p.name for p in NOTEBOOKS["theorem1_clt"]]
    assert all(set(PROFILE_NAMES) <= set(r) for r in rows)


def test_unknown_notebook_and_profile():
    with pytest.raises(ParameterError, match="unknown notebook"):
        profile_values("theorem9", "cpu")
    with pytest.raises(ParameterError, match="unknown profile"):
        profile_values("theorem1_clt", "tpu")


@pytest.mark.parametrize("values, message", [
    ({"sizes": [[1, 8]]}, r"'sizes': each size must be three positive integers.*\(1, 8\)"),
    ({"sizes": [[1, "8", 2]]}, r"'sizes': each size must be three positive integers"),
    ({"sizes": [[1, 8, 3], [1, 16, 2]]}, r"'sizes': size \(1, 8, 3\): d_model \(8\) must be divisible"),
    ({"sizes": [[1, 8, 2], [1, 8, 2]]}, r"'sizes': lists a value twice"),
    ({"D": [4096, "8192"]}, r"'D': each value must be a positive integer"),
    ({"D": [4096]}, r"at least 2 sizes and 2 token counts"),
    ({"sizes": [[1, 8, 2], [1, 16, 2]], "D": [4096, 8192], "n_seeds": 1},
     r"4 runs .* 6 parameters"),
    ({"D": [16, 4096]}, r"'D': 16 is less than one batch"),
])
def test_list_parameters_and_grids_are_checked_in_the_first_cell(values, message):
    with pytest.raises(ParameterError, match=message):
        resolve_parameters("theorem2_bias_variance", {"profile": "smoke", **values})


def test_whole_numbers_in_lists_are_accepted_as_ints():
    import numpy as np
    cfg = resolve_parameters("theorem2_bias_variance", {
        "profile": "smoke", "D": [2048.0, np.int64(4096)], "sizes": [[1, 8.0, 2], [1, 16, 2]]})
    assert cfg.D == (2048, 4096) and cfg.sizes == ((1, 8, 2), (1, 16, 2))
    assert all(type(t) is int for t in cfg.D)



def test_an_unusable_device_or_an_unreachable_hub_model_is_refused_in_the_first_cell(monkeypatch):
    import time

    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="'device': device 'cuda' is not available here"):
            resolve_parameters("theorem2_bias_variance", {"profile": "smoke", "device": "cuda"})
    with pytest.raises(ParameterError, match="is not a torch device"):
        resolve_parameters("theorem2_bias_variance", {"profile": "smoke", "device": "gpu0"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network is tried
    start = time.perf_counter()
    with pytest.raises(ParameterError, match="'model': model 'no-such-org/no-such-model' is not"):
        resolve_parameters("theorem1_clt", {"profile": "smoke", "model": "no-such-org/no-such-model"})
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("notebook", [n for n, specs in NOTEBOOKS.items()
                                      if any(p.name == "n_boot" for p in specs)])
def test_too_few_bootstrap_replicates_are_refused_in_the_first_cell_with_the_minimum(notebook):
    # n_boot=1 once printed the "interval" [0.301, 0.301] around 0.320 and decided verdicts
    from scaling_utils.chapters.t3_snr.rules import MIN_REPLICATES as T3_MINIMUM
    from scaling_utils.verdicts import MIN_REPLICATES
    minimum = T3_MINIMUM if notebook == "theorem3_snr" else MIN_REPLICATES
    with pytest.raises(ParameterError, match=f"'n_boot' must be >= {minimum}, got 1"):
        resolve_parameters(notebook, {"n_boot": 1})
    assert resolve_parameters(notebook, {"n_boot": minimum}).n_boot == minimum


def test_schedule_and_precision_choices_are_those_the_code_knows():
    from scaling_utils import models, profiles, train
    assert set(profiles.SCHEDULES) == set(train.SCHEDULES)
    assert profiles.PRECISIONS == models.PRECISIONS


@pytest.mark.long
def test_a_page_that_only_reads_results_starts_without_torch():
    # the overview's first cells: its imports and its parameter check (about 3 s of a kernel's
    # start on two cores is loading torch, which a page that reads stored results never needs)
    import subprocess
    import sys
    code = ("import sys\n"
            "from scaling_utils import plots, synthesis\n"
            "from scaling_utils.profiles import resolve_parameters\n"
            "from scaling_utils.report import glue_numbers, load_summary, show_table\n"
            "resolve_parameters('overview', {'profile': 'smoke'}, set())\n"
            "assert 'torch' not in sys.modules, 'torch was loaded'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
