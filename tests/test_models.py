"""Model loading: the offline default, clear failures, the random-initialised twin."""

import os

import numpy as np
import pytest
import torch

from scaling_utils import models
from scaling_utils.models import (ModelUnavailableError, load_model, pick_device, random_twin,
                                  tiny_llama, LoadedModel)


def test_unavailable_model_names_the_offline_default():
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest: no download is attempted
    with pytest.raises(ModelUnavailableError, match=r"model=None.*SmolLM2"):
        load_model("no-such-org/no-such-model")


def test_random_twin_has_same_config_and_fresh_seeded_weights():
    model = tiny_llama(seed=0)
    loaded = LoadedModel(model, None, "tiny", torch.device("cpu"))
    twin_a, twin_b = random_twin(loaded, seed=1), random_twin(loaded, seed=1)
    assert twin_a.model.config.to_dict() == model.config.to_dict()
    pa = dict(twin_a.model.named_parameters())
    assert not torch.equal(pa["model.layers.0.self_attn.q_proj.weight"],
                           dict(model.named_parameters())["model.layers.0.self_attn.q_proj.weight"])
    for name, p in twin_b.model.named_parameters():
        assert torch.equal(p, pa[name])


def test_window_longer_than_the_model_context_fails_early():
    loaded = LoadedModel(tiny_llama(max_context=64), None, "tiny", torch.device("cpu"))
    with pytest.raises(ValueError, match="max_length <= 64"):
        loaded.check_context(65)


def test_device_preference_is_cuda_then_mps_then_cpu(monkeypatch):
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"


@pytest.mark.slow
@pytest.mark.long  # on a fresh machine it converts the model: first, so the notebooks find it
def test_offline_default_loads_and_predicts_text():
    lm = load_model()
    assert lm.model.config.num_hidden_layers == 30 and lm.max_context >= 2048
    ids = lm.tokenizer("The capital of France is Paris. The capital of Italy is",
                       return_tensors="pt").input_ids
    with torch.inference_mode():
        loss = lm.model(input_ids=ids, labels=ids).loss.item()
    assert loss < 5.0  # a trained model; a random one scores about log(49152) = 10.8


def test_precision_settings_are_checked_and_restored():
    from scaling_utils.models import matmul_precision, precision_dtype

    assert precision_dtype("bfloat16") is torch.bfloat16
    assert precision_dtype("tf32") is torch.float32
    with pytest.raises(ValueError, match="choose one of"):
        precision_dtype("fp8")
    before = torch.backends.cuda.matmul.allow_tf32
    with matmul_precision("tf32"):
        assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_a_changed_byte_in_a_converted_model_is_detected(tmp_path):
    from scaling_utils.models import ModelIntegrityError, verify_manifest, write_manifest
    folder = tmp_path / "converted"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "config.json").write_text("{}")
    write_manifest(folder)
    verify_manifest(folder)
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[1000] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelIntegrityError, match=r"model.safetensors does not match.*damaged"):
        verify_manifest(folder)
    (folder / "model.safetensors").write_bytes(bytes(weights[:100]))  # truncated
    with pytest.raises(ModelIntegrityError, match="does not match"):
        verify_manifest(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        verify_manifest(folder)


def test_a_damaged_offline_model_is_converted_again(tmp_path, monkeypatch):
    from scaling_utils import models
    conversions = []

    def fake_convert(package, filename, folder):
        conversions.append(folder)
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        models.write_manifest(folder)

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: type(
        "Spec", (), {"submodule_search_locations": [str(tmp_path)]}))
    (tmp_path / models._GGUF_FILE).write_bytes(b"gguf")
    folder = models._offline_default_folder(tmp_path / "models")
    assert models._offline_default_folder(tmp_path / "models") == folder and len(conversions) == 1
    (folder / "model.safetensors").write_bytes(b"weightz")
    with pytest.warns(UserWarning, match="does not match.*Converting it again"):
        models._offline_default_folder(tmp_path / "models")
    assert len(conversions) == 2 and (folder / "model.safetensors").read_bytes() == b"weights"


def test_processes_that_need_the_model_at_once_convert_it_once(tmp_path, monkeypatch):
    """The first test and the first notebook of a fresh machine often start together: the
    second waits for the first conversion (about 45 s) instead of doing it again."""
    import threading
    import time

    from scaling_utils import models
    conversions = []

    def slow_convert(package, filename, folder):
        conversions.append(folder)
        time.sleep(0.5)
        staging = folder.with_name(folder.name + ".staging")
        staging.mkdir(parents=True)
        (staging / "model.safetensors").write_bytes(b"weights")
        models.write_manifest(staging)
        staging.rename(folder)

    monkeypatch.setattr(models, "_convert_gguf", slow_convert)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: type(
        "Spec", (), {"submodule_search_locations": [str(tmp_path)]}))
    (tmp_path / models._GGUF_FILE).write_bytes(b"gguf")
    found = []
    threads = [threading.Thread(target=lambda: found.append(
        models._offline_default_folder(tmp_path / "models"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(conversions) == 1 and len(set(found)) == 1 and len(found) == 3


def test_a_conversion_parses_its_gguf_file_once_and_restores_the_library(tmp_path):
    import gguf
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.zeros((4, 3), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with models._gguf_parsed_once():
        from gguf import GGUFReader, get_tensor_name_map  # as transformers imports them
        assert GGUFReader(path) is GGUFReader(str(path))  # parsed once
        assert get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is \
            get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert GGUFReader(path).tensors[0].name == "token_embd.weight"
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader, name_map)
