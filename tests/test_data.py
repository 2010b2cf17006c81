"""Corpora and windows."""

import numpy as np
import pytest

from scaling_utils.data import CorpusError, iid_windows, load_corpus, random_windows


def test_random_windows_are_seeded_and_disjoint_when_possible():
    tokens = np.arange(10_050)  # not a multiple of the window: spare tokens to place
    a = random_windows(tokens, 20, 100, seed=3)
    assert a.shape == (20, 100)
    np.testing.assert_array_equal(a, random_windows(tokens, 20, 100, seed=3))
    assert np.all(np.diff(a, axis=1) == 1)  # consecutive tokens
    starts = np.sort(a[:, 0])
    assert np.all(np.diff(starts) >= 100)  # no overlap
    assert not np.array_equal(a, random_windows(tokens, 20, 100, seed=4))


def test_window_longer_than_corpus_names_the_fix():
    with pytest.raises(CorpusError, match="shorter max_length"):
        random_windows(np.arange(50), 2, 64, seed=0)


def test_iid_windows_keep_the_vocabulary():
    tokens = np.array([1, 1, 2, 3])
    w = iid_windows(tokens, 10, 50, seed=0)
    assert set(np.unique(w)) <= {1, 2, 3}


def test_local_text_file_and_unknown_names(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("hello world\n\nsecond paragraph")
    corpus = load_corpus(str(path))
    assert corpus.name == "mine.txt" and "second" in corpus.text
    with pytest.raises(CorpusError, match="unknown corpus"):
        load_corpus("wikipedai")
    (tmp_path / "empty.txt").write_text("  ")
    with pytest.raises(CorpusError, match="empty"):
        load_corpus(str(tmp_path / "empty.txt"))


def test_offline_corpora_load():
    wiki = load_corpus("wikipedia")
    assert wiki.n_characters > 1_000_000 and "'''" not in wiki.text
    assert load_corpus("shakespeare").n_characters > 1_000_000
