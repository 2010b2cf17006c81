"""Capture: parity with a plain forward pass, exactness of the streamed statistics, n_eff."""

import numpy as np
import pytest
import torch

from scaling_utils import capture
from scaling_utils.capture import capture_statistics, find_sites, forward
from scaling_utils.models import tiny_llama
from scaling_utils.estimators.moments import total_variance
from scaling_utils.estimators.snr import attention_concentration

LENGTHS = [2, 4, 8, 16]


@pytest.fixture(scope="module")
def model():
    return tiny_llama(attn_implementation="eager", seed=0)


@pytest.fixture(scope="module")
def windows():
    return np.random.default_rng(0).integers(0, 97, (12, 16))


def test_sites_cover_embeddings_every_block_and_final_norm(model):
    kinds = [s.kind for s in find_sites(model)]
    assert kinds == ["embeddings"] + ["attention", "block"] * 2 + ["final_norm"]


def test_capturing_does_not_change_the_logits(model, windows, monkeypatch):
    # the same call and batches without hooks: the logits must be bit-identical
    plain = torch.cat([forward(model, torch.as_tensor(windows[s:s + 5])).logits
                       for s in range(0, len(windows), 5)])
    seen = []
    monkeypatch.setattr(capture, "forward", lambda m, i: seen.append(forward(m, i).logits))
    capture.capture_statistics(model, windows, LENGTHS, batch_size=5, n_groups=3,
                               n_projections=2, attention_weights=True, position_loss=True,
                               progress=False)
    torch.testing.assert_close(torch.cat(seen), plain, rtol=0, atol=0)


def test_streamed_statistics_equal_those_of_stored_hidden_states(model, windows):
    result = capture_statistics(model, windows, LENGTHS, batch_size=5, n_groups=3,
                                n_projections=2, progress=False)
    with torch.inference_mode():
        hidden = model(input_ids=torch.as_tensor(windows), output_hidden_states=True).hidden_states
    # hidden_states: [0] the embeddings, [1] block 0, [2] block 1 after the final norm (Llama)
    for site, states in (("embeddings", hidden[0]), ("block.0", hidden[1]),
                         ("final_norm", hidden[2])):
        at_n = states[:, np.array(LENGTHS) - 1].double().numpy()  # windows x K x D
        exact = ((at_n - at_n.mean(0)) ** 2).sum(-1).sum(0) / (len(windows) - 1)
        np.testing.assert_allclose(total_variance(result.moments[site]).variance, exact, rtol=1e-9)
        np.testing.assert_allclose(result.moments[site].mean, at_n.mean(0), atol=1e-9)


def test_n_eff_matches_the_attention_rows(model, windows):
    result = capture_statistics(model, windows, LENGTHS, batch_size=12, n_groups=3,
                                attention_weights=True, progress=False)
    with torch.inference_mode():
        att = model(input_ids=torch.as_tensor(windows), output_attentions=True).attentions
    for layer, a in enumerate(att):
        rows = a[:, :, np.array(LENGTHS) - 1].double()  # B x H x K x T
        # harmonic mean over windows: 1 / mean(sum a^2), not the mean of 1 / sum a^2
        expected = 1 / attention_concentration(rows).mean(0).T.numpy()  # K x H
        np.testing.assert_allclose(result.n_eff[layer], expected, rtol=1e-9)
        np.testing.assert_allclose(result.sink_mass[layer], rows[..., 0].mean(0).T.numpy(), rtol=1e-9)
        rest = rows[..., 1:] / rows[..., 1:].sum(-1, keepdim=True)
        np.testing.assert_allclose(result.n_eff_no_sink[layer],
                                   1 / attention_concentration(rest).mean(0).T.numpy(), rtol=1e-9)
    assert np.all(result.n_eff <= np.array(LENGTHS)[None, :, None] + 1e-9)


def test_position_loss_matches_the_model_loss(model, windows):
    result = capture_statistics(model, windows, LENGTHS, batch_size=12, n_groups=1,
                                position_loss=True, progress=False)
    with torch.inference_mode():
        loss = model(input_ids=torch.as_tensor(windows), labels=torch.as_tensor(windows)).loss
    assert result.position_loss.mean() == pytest.approx(loss.item(), rel=1e-5)


def test_fixed_query_reads_the_replaced_token(model, windows):
    a = capture_statistics(model, windows, LENGTHS, n_groups=2, fixed_query_token=5, progress=False)
    # embeddings at the query position are the fixed token's embedding: zero variance
    np.testing.assert_allclose(total_variance(a.moments["embeddings"]).variance, 0, atol=1e-12)
    assert "fixed" in a.query


def test_fixed_query_from_a_cached_prefix_is_a_pass_over_each_prefix(model, windows):
    # the cached prefix and one query per n give what a separate pass over the first n-1 tokens
    # and the query gives (float32 sums in another order: agreement to 1e-5)
    lengths = [1] + LENGTHS  # n = 1: the query alone, nothing cached before it
    fixed = capture_statistics(model, windows, lengths, batch_size=5, n_groups=2,
                               n_projections=2, fixed_query_token=5, progress=False)
    for k, n in enumerate(lengths):
        ids = windows[:, :n].copy()
        ids[:, -1] = 5
        alone = capture_statistics(model, ids, [n], batch_size=5, n_groups=2, n_projections=2,
                                   progress=False)
        for site, moments in alone.moments.items():
            got = fixed.moments[site]
            np.testing.assert_array_equal(got.count[:, k], moments.count[:, 0])
            np.testing.assert_allclose(got.total[:, k], moments.total[:, 0], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got.total_sq[:, k], moments.total_sq[:, 0], rtol=1e-5,
                                       atol=1e-6)
            np.testing.assert_allclose(got.projections[:, k], moments.projections[:, 0],
                                       rtol=1e-5, atol=1e-6)


def test_capture_is_deterministic_on_cpu(model, windows):
    runs = [capture_statistics(model, windows, LENGTHS, n_groups=3, n_projections=2, seed=4,
                               progress=False) for _ in range(2)]
    for site in runs[0].moments:
        np.testing.assert_array_equal(runs[0].moments[site].total, runs[1].moments[site].total)
        np.testing.assert_array_equal(runs[0].moments[site].projections,
                                      runs[1].moments[site].projections)


def test_bad_requests_fail_early_with_the_fix(model, windows):
    with pytest.raises(ValueError, match="lengths must lie"):
        capture_statistics(model, windows, [4, 32], progress=False)
    with pytest.raises(ValueError, match="n_groups"):
        capture_statistics(model, windows, LENGTHS, n_groups=50, progress=False)
    with pytest.raises(ValueError, match="unknown site kinds"):
        capture_statistics(model, windows, LENGTHS, n_groups=2, kinds=["mlp"], progress=False)
    sdpa = tiny_llama(attn_implementation="sdpa")
    with pytest.raises(ValueError, match="eager"):
        capture_statistics(sdpa, windows, LENGTHS, n_groups=2, attention_weights=True, progress=False)
