"""Dispatch metadata: good, malformed, wrong-typed, unknown and oversized input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.metadata import (
    MAX_CONTEXT_BYTES,
    MAX_METADATA_BYTES,
    DispatchMetadata,
    merge_participant_attributes,
    parse_dispatch_metadata,
)

GOOD = {
    "property_id": "hotel-berlin",
    "reservation_code": "AB1234",
    "guest_name": "Anna Müller",
    "language": "de-DE",
    "conversation_id": "conv-42",
    "caller_identity": "guest-anna",
    "caller_key": "u-5d1c0ffee",
    "context": {"channel": "app", "vip": True, "nights": 3},
}


def test_good_metadata_is_read_in_full() -> None:
    metadata, problems = parse_dispatch_metadata(json.dumps(GOOD))
    assert problems == []
    assert metadata.model_dump() == GOOD


def test_missing_or_blank_metadata_means_defaults_without_a_warning() -> None:
    for raw in (None, "", "   ", "{}"):
        metadata, problems = parse_dispatch_metadata(raw)
        assert metadata == DispatchMetadata()
        assert problems == []


def test_values_are_tidied() -> None:
    metadata, problems = parse_dispatch_metadata(
        json.dumps({"guest_name": "  Anna  ", "language": "pt_BR", "reservation_code": ""})
    )
    assert problems == []
    assert metadata.guest_name == "Anna"
    assert metadata.language == "pt-BR"
    assert metadata.reservation_code is None


def test_malformed_json_is_one_problem_and_all_defaults() -> None:
    metadata, problems = parse_dispatch_metadata('{"property_id": "hotel-berlin",')
    assert metadata == DispatchMetadata()
    assert len(problems) == 1
    assert "not valid JSON" in problems[0]
    assert "line 1" in problems[0]


def test_json_that_is_not_an_object_is_rejected_by_its_type() -> None:
    for raw, shown in (("[1, 2]", "an array"), ('"hello"', "a string"), ("42", "a number")):
        metadata, problems = parse_dispatch_metadata(raw)
        assert metadata == DispatchMetadata()
        assert problems == [f"dispatch metadata must be a JSON object, got {shown}; ignored it"]


def test_non_standard_json_constants_are_rejected() -> None:
    _, problems = parse_dispatch_metadata('{"context": {"score": NaN}}')
    assert len(problems) == 1
    assert "NaN" in problems[0]


def test_wrong_types_drop_only_the_bad_field() -> None:
    raw = json.dumps({"property_id": 7, "language": "fr", "guest_name": ["x"]})
    metadata, problems = parse_dispatch_metadata(raw)
    assert metadata.language == "fr"
    assert metadata.property_id is None
    assert metadata.guest_name is None
    assert sorted(problems) == [
        "dispatch metadata field 'guest_name': expected a valid string",
        "dispatch metadata field 'property_id': expected a valid string",
    ]


def test_unknown_fields_are_named_and_ignored() -> None:
    metadata, problems = parse_dispatch_metadata(
        json.dumps({"property_id": "p1", "room_number": "12"})
    )
    assert metadata.property_id == "p1"
    assert problems == ["dispatch metadata has unknown field 'room_number'"]


def test_a_malformed_language_tag_is_explained() -> None:
    metadata, problems = parse_dispatch_metadata(json.dumps({"language": "english please"}))
    assert metadata.language is None
    assert problems == [
        "dispatch metadata field 'language': expected a language tag such as 'en' or 'de-DE'"
    ]


def test_problems_never_quote_the_guest_data() -> None:
    _, problems = parse_dispatch_metadata(json.dumps({"guest_name": "G" * 500, "x": "Secret St"}))
    assert problems
    assert not any("GGGG" in p or "Secret St" in p for p in problems)


def test_oversized_metadata_is_ignored_whole() -> None:
    raw = json.dumps({"property_id": "p1", "context": {"blob": "x" * MAX_METADATA_BYTES}})
    metadata, problems = parse_dispatch_metadata(raw)
    assert metadata == DispatchMetadata()
    assert len(problems) == 1
    assert f"over the {MAX_METADATA_BYTES}-byte limit" in problems[0]


def test_an_oversized_context_is_dropped_but_the_rest_kept() -> None:
    raw = json.dumps({"property_id": "p1", "context": {"notes": "y" * MAX_CONTEXT_BYTES}})
    metadata, problems = parse_dispatch_metadata(raw)
    assert metadata.property_id == "p1"
    assert metadata.context == {}
    assert len(problems) == 1
    assert "'context'" in problems[0]
    assert f"over the {MAX_CONTEXT_BYTES}-byte limit" in problems[0]


def test_over_long_fields_are_dropped() -> None:
    metadata, problems = parse_dispatch_metadata(
        json.dumps({"reservation_code": "R" * 65, "property_id": "p1"})
    )
    assert metadata.reservation_code is None
    assert metadata.property_id == "p1"
    assert problems == [
        "dispatch metadata field 'reservation_code': String should have at most 64 characters"
    ]


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    raw = '{"context": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    metadata, problems = parse_dispatch_metadata(raw)
    assert metadata == DispatchMetadata()
    assert len(problems) == 1


def test_caller_attributes_fill_what_the_dispatch_left_empty() -> None:
    dispatch, _ = parse_dispatch_metadata(json.dumps({"property_id": "hotel-berlin"}))
    merged, problems = merge_participant_attributes(
        dispatch,
        {
            "property_id": "hotel-paris",
            "language": "fr",
            "guest_name": "Jean",
            "lk.agent.state": "listening",
            "caller_identity": "someone-else",
        },
    )
    assert problems == []
    assert merged.property_id == "hotel-berlin"
    assert merged.language == "fr"
    assert merged.guest_name == "Jean"
    assert merged.caller_identity is None


def test_bad_caller_attributes_are_reported_and_skipped() -> None:
    merged, problems = merge_participant_attributes(
        DispatchMetadata(), {"language": "??", "reservation_code": "AB1"}
    )
    assert merged.language is None
    assert merged.reservation_code == "AB1"
    assert problems == [
        "caller attribute field 'language': expected a language tag such as 'en' or 'de-DE'"
    ]


def test_no_relevant_attributes_changes_nothing() -> None:
    metadata = DispatchMetadata(property_id="p1")
    merged, problems = merge_participant_attributes(metadata, {"lk.foo": "bar"})
    assert merged == metadata
    assert problems == []


def test_present_fields_lists_names_only() -> None:
    metadata, _ = parse_dispatch_metadata(json.dumps({"guest_name": "Anna", "language": "de"}))
    assert metadata.present_fields() == ["guest_name", "language"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_yields_metadata_never_an_exception(raw: str) -> None:
    metadata, problems = parse_dispatch_metadata(raw)
    assert isinstance(metadata, DispatchMetadata)
    assert all(isinstance(p, str) and p for p in problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*GOOD, "unknown", "extra"]),
        _json_values,
        max_size=8,
    )
)
def test_any_json_object_keeps_exactly_the_valid_fields(data: dict[str, object]) -> None:
    metadata, problems = parse_dispatch_metadata(json.dumps(data))
    for name in DispatchMetadata.model_fields:
        named = any(f"'{name}'" in p for p in problems)
        value = data.get(name)
        blank = value in (None, {}) or (isinstance(value, str) and not value.strip())
        if name in data and not named and not blank:
            assert getattr(metadata, name) not in (None, {}), name
        if named:
            assert getattr(metadata, name) in (None, {}), name
