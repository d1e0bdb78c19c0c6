"""The offline hashing embedder: deterministic, normalised, and lexically meaningful."""

from __future__ import annotations

import numpy as np

from tools.embeddings import HashingEmbedder
from tools.embeddings.hashing import content_words


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


async def test_vectors_are_unit_length_with_the_declared_dimensions() -> None:
    embedder = HashingEmbedder(512)
    vectors = await embedder.aembed_documents(["Wi-Fi password", "the", "", "Täsch car park"])
    assert [len(v) for v in vectors] == [512] * 4
    assert all(abs(np.linalg.norm(v) - 1.0) < 1e-5 for v in vectors)
    assert embedder.dimensions == 512
    assert embedder.model_name == "hashing-v1-d512"


async def test_same_text_gives_the_same_vector_in_every_instance() -> None:
    first = await HashingEmbedder().aembed_query("Where do I park at the loft?")
    second = HashingEmbedder().embed_documents(["Where do I park at the loft?"])[0]
    assert first == second


async def test_related_text_scores_higher_than_unrelated_text() -> None:
    embedder = HashingEmbedder()
    question = await embedder.aembed_query("what's the wifi password?")
    wifi, sauna = await embedder.aembed_documents(
        [
            "Wi-Fi network HarborLoft-Guest, password sailboat-2024.",
            "Switch on the sauna 45 minutes before you want to use it.",
        ]
    )
    assert cosine(question, wifi) > 0.15
    assert cosine(question, wifi) > 3 * abs(cosine(question, sauna))


async def test_accents_case_and_inflections_still_match() -> None:
    embedder = HashingEmbedder()
    a, b, c = await embedder.aembed_documents(
        ["Parking in TÄSCH", "parked in tasch", "sauna towels"]
    )
    assert cosine(a, b) > 0.5
    assert cosine(a, b) > cosine(a, c) + 0.4


def test_content_words_drop_stop_words_and_join_hyphenated_words() -> None:
    assert content_words("Is there Wi-Fi in the chalet's rooms?") == [
        "wi",
        "fi",
        "wifi",
        "chalet",
        "room",
    ]


async def test_sync_api_works_inside_a_running_loop() -> None:
    embedder = HashingEmbedder(64)
    assert embedder.embed_query("dogs") == await embedder.aembed_query("dogs")
