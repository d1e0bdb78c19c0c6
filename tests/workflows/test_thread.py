"""Conversation thread ids: stable across reconnects and chat, and free of guest data."""

from __future__ import annotations

import re

import pytest

from workflows.thread import conversation_thread_id


def test_conversation_id_wins_and_is_stable() -> None:
    first = conversation_thread_id(
        conversation_id="conv-42", reservation_code="SL4821", guest_name="Berger", room="r1"
    )
    again = conversation_thread_id(conversation_id=" conv-42 ", room="another-room")
    assert first == again
    assert first.startswith("conversation-")
    assert first != conversation_thread_id(conversation_id="conv-43")


def test_reservation_identity_ignores_spelling_differences() -> None:
    spoken = conversation_thread_id(reservation_code="sl-48 21", guest_name="  anna  MÜLLER ")
    typed = conversation_thread_id(reservation_code="SL4821", guest_name="Anna Muller")
    assert spoken == typed
    assert spoken.startswith("reservation-")
    assert spoken != conversation_thread_id(reservation_code="SL4821", guest_name="Anna Miller")
    assert spoken != conversation_thread_id(reservation_code="SL4822", guest_name="Anna Muller")


def test_reconnecting_caller_in_the_same_room_gets_the_same_thread() -> None:
    a = conversation_thread_id(room="stay-7", caller_identity="guest-app-123")
    b = conversation_thread_id(room="stay-7", caller_identity="guest-app-123")
    assert a == b and a.startswith("caller-")
    assert a != conversation_thread_id(room="stay-7", caller_identity="guest-app-124")
    assert a != conversation_thread_id(room="stay-8", caller_identity="guest-app-123")
    # A reservation code without a name is not an identity on its own.
    assert a == conversation_thread_id(
        reservation_code="SL4821", room="stay-7", caller_identity="guest-app-123"
    )


def test_ids_carry_no_guest_data_and_are_key_safe() -> None:
    secrets = ("SL4821", "Berger", "+4915112345678", "anna@example.com", "suite-12")
    ids = [
        conversation_thread_id(conversation_id="anna@example.com"),
        conversation_thread_id(reservation_code="SL4821", guest_name="Berger"),
        conversation_thread_id(room="suite-12", caller_identity="sip_+4915112345678"),
    ]
    for thread_id in ids:
        assert re.fullmatch(r"(conversation|reservation|caller)-[0-9a-f]{32}", thread_id)
        for secret in secrets:
            assert secret.lower() not in thread_id.lower()


def test_nothing_to_identify_the_conversation_is_an_error() -> None:
    with pytest.raises(ValueError, match="thread id needs"):
        conversation_thread_id(conversation_id="  ", guest_name="Berger")
