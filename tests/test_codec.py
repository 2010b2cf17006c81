"""Stored results are JSON plus arrays: every result type comes back equal, and bytes that would
run code (a pickle, a class outside the package) are refused."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from scaling_utils import codec, train
from scaling_utils.codec import CodecError
from scaling_utils.synthetic import preset_source


@pytest.mark.long
def test_a_trained_run_with_checkpoints_round_trips_exactly():
    source = preset_source("tiny", seed=1)
    eval_tokens, _, _ = train.evaluation_set(source, 16, 16, seed=9)
    config = train.TrainConfig(train.StudentSpec(1, 8, 2), D=16 * 16 * 4, vocab_size=source.n_symbols,
                               context=16, batch_size=16, n_evals=2, keep_checkpoints=True)
    run = train.train_student(config, source, eval_tokens)
    back = codec.loads(codec.dumps(run))
    assert type(back) is train.TrainResult and back.config == run.config
    np.testing.assert_array_equal(back.curve_loss, run.curve_loss)
    assert isinstance(back.checkpoints, tuple) and len(back.checkpoints) == len(run.checkpoints)
    for key, tensor in run.state.items():
        assert torch.equal(back.state[key], tensor) and back.state[key].dtype == tensor.dtype
    assert train.load_student(back, "cpu", checkpoint=0) is not None


def test_tables_tensors_and_plain_values_round_trip():
    table = pd.DataFrame({"task": ["copy", "recall"], "snr": [1.5, np.nan], "n": [3, 4],
                          "learned": [True, False],
                          "size": [train.StudentSpec(1, 8, 2), None]})
    pd.testing.assert_frame_equal(codec.loads(codec.dumps(table)), table)
    indexed = pd.Series([1.0, 2.0], index=pd.Index([8, 16], name="n"), name="variance")
    pd.testing.assert_series_equal(codec.loads(codec.dumps(indexed)), indexed)
    scalar = codec.loads(codec.dumps({"x": np.array(3.5), "t": torch.tensor(2.0)}))
    assert scalar["x"].shape == () and scalar["t"].shape == ()
    value = {"t": (1, 2.5, float("inf")), 7: "int key", "__type__": "a plain key",
             "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16), "none": None}
    back = codec.loads(codec.dumps(value))
    assert back["t"] == (1, 2.5, float("inf")) and back[7] == "int key"
    assert back["__type__"] == "a plain key" and back["none"] is None
    assert back["half"].dtype == torch.bfloat16 and torch.equal(back["half"], value["half"])


def test_values_that_cannot_be_stored_are_named():
    class Foreign:
        pass

    with pytest.raises(CodecError, match="Foreign"):
        codec.dumps({"x": Foreign()})


def _archive(tree: dict, **arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, __tree__=np.frombuffer(json.dumps(tree).encode(), np.uint8), **arrays)
    return buffer.getvalue()


def test_bytes_that_could_run_code_are_refused():
    # a class outside the package: never imported, never called
    crafted = _archive({"__type__": "dataclass", "class": "subprocess:Popen", "fields": {"args": "true"}})
    with pytest.raises(CodecError, match="only scaling_utils types"):
        codec.loads(crafted)
    # a name inside the package that is not a dataclass
    for name in ("scaling_utils.cache:cached", "scaling_utils.estimators.thresholds:pd.NamedAgg",
                 "scaling_utils.capture:torch.Size"):
        with pytest.raises(CodecError, match="not a dataclass defined in scaling_utils"):
            codec.loads(_archive({"__type__": "dataclass", "class": name, "fields": {}}))
    with pytest.raises(CodecError, match="ModuleNotFoundError"):
        codec.loads(_archive({"__type__": "dataclass", "class": "scaling_utils.nope:X", "fields": {}}))
    with pytest.raises(CodecError, match="KeyError"):
        codec.loads(_archive({"__type__": "ndarray", "key": "a7"}))
    # an object array inside the archive is a pickle: numpy refuses it without allow_pickle
    with pytest.raises(CodecError, match="not a stored result"):
        codec.loads(_archive({"__type__": "ndarray", "key": "a0"}, a0=np.array([{1: 2}], dtype=object)))
    import pickle
    with pytest.raises(CodecError, match="not a stored result"):
        codec.loads(pickle.dumps({"a": 1}))
