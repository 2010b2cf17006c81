"""Corpora and windows."""

import numpy as np
import pytest

from scaling_utils.data import (CorpusError, iid_windows, load_corpus, random_windows,
                                shuffled_windows, with_first_token)


def test_random_windows_are_seeded_and_disjoint():
    tokens = np.arange(10_050)  # not a multiple of the window: spare tokens to place
    a = random_windows(tokens, 20, 100, seed=3)
    assert a.shape == (20, 100)
    np.testing.assert_array_equal(a, random_windows(tokens, 20, 100, seed=3))
    assert np.all(np.diff(a, axis=1) == 1)  # consecutive tokens
    starts = np.sort(a[:, 0])
    assert np.all(np.diff(starts) >= 100)  # no overlap
    assert not np.array_equal(a, random_windows(tokens, 20, 100, seed=4))


def test_shuffled_windows_keep_each_windows_tokens_in_another_order():
    windows = random_windows(np.arange(10_000), 6, 50, seed=0)
    shuffled = shuffled_windows(windows, seed=1)
    np.testing.assert_array_equal(np.sort(shuffled, 1), np.sort(windows, 1))
    assert (shuffled != windows).mean() > 0.9  # almost every position moved
    np.testing.assert_array_equal(shuffled, shuffled_windows(windows, seed=1))


def test_a_fixed_first_token_replaces_only_the_first_and_leaves_the_windows_as_they_were():
    windows = random_windows(np.arange(10_000), 4, 20, seed=0)
    before = windows.copy()
    fixed = with_first_token(windows, 7)
    assert (fixed[:, 0] == 7).all()
    np.testing.assert_array_equal(fixed[:, 1:], windows[:, 1:])
    np.testing.assert_array_equal(windows, before)


def test_window_longer_than_corpus_names_the_fix():
    with pytest.raises(CorpusError, match="shorter max_length"):
        random_windows(np.arange(50), 2, 64, seed=0)


def test_more_windows_than_the_corpus_holds_disjoint_is_refused_naming_the_fix():
    random_windows(np.arange(1000), 10, 100, seed=0)  # exactly fits
    with pytest.raises(CorpusError, match=r"only 9 disjoint windows.*n_windows <= 9"):
        random_windows(np.arange(999), 10, 100, seed=0)


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


@pytest.mark.long
def test_offline_corpora_load():
    wiki = load_corpus("wikipedia")
    assert wiki.n_characters > 1_000_000 and "'''" not in wiki.text
    assert load_corpus("shakespeare").n_characters > 1_000_000


class CharTokenizer:
    """One id per character: enough to see whether a corpus was tokenised again."""

    name_or_path = "chars"

    def __len__(self):
        return 256

    def get_vocab(self):
        return {chr(i): i for i in range(256)}

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[ord(c) % 256 for c in t] for t in texts]}


def test_a_corpus_edited_in_place_is_tokenised_again(tmp_path, cache_folder):
    from scaling_utils.data import tokenize
    path = tmp_path / "corpus.txt"
    path.write_text("first version\n\nof the text")
    before = tokenize(load_corpus(str(path)), CharTokenizer())
    path.write_text("other version\n\nof the text")  # same length, same name
    after = tokenize(load_corpus(str(path)), CharTokenizer())
    assert len(after) == len(before) and not np.array_equal(after, before)
    assert len(list((cache_folder / "tokens").glob("*.npz"))) == 2


def test_binary_and_non_utf8_corpora_are_refused(tmp_path):
    from scaling_utils.data import MAX_INVALID_UTF8
    with pytest.raises(CorpusError, match="/bin/ls is not text"):
        load_corpus("/bin/ls")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 na\xefve ".encode("latin-1") * 100)
    with pytest.raises(CorpusError, match=r"not UTF-8 text: 200 of its 1,100 bytes.*iconv"):
        load_corpus(str(latin1))
    stray = tmp_path / "stray.txt"  # one bad byte in 20,000: within the stated tolerance
    stray.write_bytes(b"plain text " * 2000 + b"\xe9")
    assert 1 / len(stray.read_bytes()) < MAX_INVALID_UTF8
    with pytest.warns(UserWarning, match="1 byte"):
        assert load_corpus(str(stray)).text.endswith("\ufffd")


def test_a_binary_corpus_is_refused_in_the_first_cell(tmp_path):
    from scaling_utils.profiles import ParameterError, resolve_parameters
    with pytest.raises(ParameterError, match="parameter 'corpus'.*/bin/ls is not text"):
        resolve_parameters("theorem1_clt", {"profile": "smoke", "corpus": "/bin/ls"})
