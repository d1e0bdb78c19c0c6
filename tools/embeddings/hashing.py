"""An offline lexical embedder: feature-hashed words, word pairs and character n-grams.

No model, no network, deterministic across processes. It matches on shared vocabulary and
spelling fragments, not meaning, so it is the lower-quality fallback (and what tests use).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import unicodedata
import zlib
from collections import Counter

import numpy as np

from tools.embeddings.base import Embedder

# bump when features change: the name is recorded with collections and cache keys
HASHING_VERSION = 1
DEFAULT_HASHING_DIMENSIONS = 2048

_STOP_TEXT = """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each few for from further get gets got had hadn't has hasn't have
    haven't having he her here hers herself him himself his how i i'd i'll i'm i've if in into
    is isn't it it's its itself just let's me might more most must mustn't my myself no nor not
    now of off on once only or other ought our ours ourselves out over own please same shall
    shan't she should shouldn't so some such than that that's the their theirs them themselves
    then there there's these they they'd they'll they're they've this those through to too under
    until up us very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's will with won't would wouldn't you you'd
    you'll you're you've your yours yourself yourselves also any anyone anything tell know need
    want like there's ok okay hi hello thanks thank
"""
_STOP_LIST = frozenset(_STOP_TEXT.split())
# tokens split contractions at the apostrophe, so "don't" arrives as "don"
STOP_WORDS = _STOP_LIST | {w.split("'")[0] for w in _STOP_LIST}

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def fold(text: str) -> str:
    """Lower-case and strip accents, so "Täsch" and "tasch" are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    """A deliberately light suffix stripper: plurals and common verb endings."""
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix, replacement, min_stem in (
        ("ies", "y", 3),
        ("sses", "ss", 2),
        ("ing", "", 4),
        ("ed", "", 4),
        ("es", "e", 4),
        ("s", "", 3),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= min_stem:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: -len(suffix)] + replacement
    return word


def tokens(text: str) -> list[str]:
    """Folded words in order; "wi-fi" yields "wi", "fi" and "wifi", "guest's" yields "guest"."""
    out: list[str] = []
    for match in _WORD.findall(fold(text)):
        parts = match.split("-")
        out.extend(p.split("'")[0] for p in parts)
        if len(parts) > 1:
            out.append("".join(p.split("'")[0] for p in parts))
    return out


def content_words(text: str) -> list[str]:
    """The stemmed non-stop-words of a text, in order."""
    return [stem(w) for w in tokens(text) if w and w not in STOP_WORDS]


class HashingEmbedder(Embedder):
    """Signed feature hashing of three feature families, each with sublinear term frequency.

    Families are normalised separately and mixed with fixed weights: whole words carry the
    topic, word pairs reward matching phrases, character n-grams tolerate inflections and typos.
    """

    provider = "hashing"
    # lexical scores run low: relevant passages score about 0.1 to 0.4
    suggested_min_score = 0.08

    def __init__(
        self,
        dimensions: int = DEFAULT_HASHING_DIMENSIONS,
        *,
        word_weight: float = 1.0,
        bigram_weight: float = 0.3,
        char_weight: float = 0.8,
        char_ngrams: tuple[int, ...] = (3, 4, 5),
        spans: tuple[float, float, float] = (0.5, 0.2, 0.3),
    ) -> None:
        if dimensions < 16:
            raise ValueError("the hashing embedder needs at least 16 dimensions")
        self._dimensions = dimensions
        self._weights = (word_weight, bigram_weight, char_weight)
        self._char_ngrams = char_ngrams
        # each family hashes into its own slice: a word never collides with a character n-gram
        cuts = [0, *(round(dimensions * f) for f in np.cumsum(spans)[:-1]), dimensions]
        self._spans = list(itertools.pairwise(cuts))
        self.model_name = f"hashing-v{HASHING_VERSION}-d{dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def _family_vector(self, features: Counter[str], start: int, stop: int) -> np.ndarray:
        vector = np.zeros(self._dimensions, dtype=np.float32)
        width = stop - start
        for feature, count in features.items():
            h = zlib.crc32(feature.encode("utf-8"))
            sign = 1.0 if h & 0x80000000 else -1.0
            vector[start + h % width] += sign * (1.0 + math.log(count))
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def _features(self, text: str) -> tuple[Counter[str], Counter[str], Counter[str]]:
        # a text of only stop words ("is it?") still deserves a non-zero vector
        words = content_words(text) or tokens(text)
        unigrams = Counter(f"w {w}" for w in words)
        bigrams = Counter(f"b {a} {b}" for a, b in itertools.pairwise(words))
        grams: Counter[str] = Counter()
        for word in words:
            padded = f"<{word}>"
            for n in self._char_ngrams:
                grams.update(f"c {padded[i : i + n]}" for i in range(len(padded) - n + 1))
        return unigrams, bigrams, grams

    def embed_one(self, text: str) -> list[float]:
        combined = np.zeros(self._dimensions, dtype=np.float32)
        families = zip(self._weights, self._features(text), self._spans, strict=True)
        for weight, features, (start, stop) in families:
            if features:
                combined += weight * self._family_vector(features, start, stop)
        norm = float(np.linalg.norm(combined))
        if norm == 0:
            # featureless text: a fixed unit vector, since cosine search cannot take zeros
            combined[0] = 1.0
            return combined.tolist()
        return (combined / norm).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_one(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if len(texts) <= 4:
            return self.embed_documents(texts)
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_one(text)
