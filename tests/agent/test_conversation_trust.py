"""The worker continues a conversation only on a trusted key, and verification is the caller's.

Built on the worker's real brain (`agent.brain.build_brain`) with a real Redis, so two brains
are two calls on two workers sharing state. The attack from the issue: a second caller names
the first caller's conversation and reads their verified reservation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _worker_fakes import clear_worker_env
from langchain_core.messages import ToolMessage

from agent.brain import Brain, build_brain
from agent.metadata import conversation_key, merge_participant_attributes, parse_dispatch_metadata
from agent.settings import WorkerSettings

CODE, NAME = "HVL-3342", "Johnson"  # a seeded demo booking

BrainFor = Callable[..., Any]


@pytest.fixture
async def brain_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> AsyncIterator[BrainFor]:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(
        _env_file=None,  # type: ignore[call-arg]
        DATA_DIR=tmp_path / "data",
        EMBEDDINGS_PROVIDER="hashing",
        REDIS_URL=redis_url,
    )
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            dispatch: dict[str, Any], *, identity: str, attributes: dict[str, str] | None = None
        ) -> Brain:
            metadata, problems = parse_dispatch_metadata(json.dumps(dispatch))
            assert problems == []
            metadata, _ = merge_participant_attributes(metadata, attributes or {})
            return await build_brain(
                settings,
                metadata,
                room_name=f"room-{identity}",
                caller_identity=identity,
                stack=stack,
            )

        yield make


async def _verify(brain: Brain) -> dict[str, Any]:
    tool = next(t for t in brain.tools if t.name == "find_reservation")
    result = await tool.ainvoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": tool.name,
            "args": {"confirmation_code": CODE, "last_name": NAME},
        },
        config={"configurable": {"thread_id": brain.thread_id}},
    )
    assert isinstance(result, ToolMessage)
    return dict(result.artifact)


async def test_a_conversation_id_in_participant_attributes_starts_a_new_conversation(
    brain_for: BrainFor,
) -> None:
    anna = await brain_for(
        {"conversation_id": "c-anna", "caller_identity": "anna:1", "caller_key": "u-anna"},
        identity="anna:1",
    )
    assert (await _verify(anna))["verified"] is True

    # Mallory's token carries Anna's conversation id as an attribute (as the old token server
    # passed client attributes through); the dispatch names none.
    mallory = await brain_for({}, identity="mallory:2", attributes={"conversation_id": "c-anna"})

    assert mallory.thread_id != anna.thread_id
    assert await mallory.desk.reservation(mallory.thread_id) is None
    # Even naming Anna's thread directly, Mallory's desk has no verified reservation there.
    assert await mallory.desk.reservation(anna.thread_id) is None


async def test_attribute_reservation_details_do_not_pick_the_stays_thread(
    brain_for: BrainFor,
) -> None:
    operator = await brain_for({"reservation_code": CODE, "guest_name": NAME}, identity="sip-guest")
    mallory = await brain_for(
        {}, identity="mallory:3", attributes={"reservation_code": CODE, "guest_name": NAME}
    )
    assert mallory.thread_id != operator.thread_id


async def test_verification_follows_the_caller_not_the_thread(brain_for: BrainFor) -> None:
    anna = await brain_for(
        {"conversation_id": "c-anna", "caller_identity": "anna:1", "caller_key": "u-anna"},
        identity="anna:1",
    )
    assert (await _verify(anna))["verified"] is True

    # Anna reconnects with a new token (new identity, same end user and conversation) on
    # another worker: same thread, still verified.
    anna_again = await brain_for(
        {"conversation_id": "c-anna", "caller_identity": "anna:9", "caller_key": "u-anna"},
        identity="anna:9",
    )
    assert anna_again.thread_id == anna.thread_id
    assert await anna_again.desk.reservation(anna_again.thread_id) is not None

    # The operator dispatches someone else onto that conversation: they share the thread
    # (the operator decided so) but not Anna's verified status.
    other = await brain_for({"conversation_id": "c-anna"}, identity="sip-caller")
    assert other.thread_id == anna.thread_id
    assert await other.desk.reservation(other.thread_id) is None

    # Anna on a new conversation starts unverified too.
    anna_new = await brain_for(
        {"conversation_id": "c-anna-2", "caller_identity": "anna:10", "caller_key": "u-anna"},
        identity="anna:10",
    )
    assert await anna_new.desk.reservation(anna_new.thread_id) is None


def test_only_dispatch_fields_choose_the_thread() -> None:
    dispatch, _ = parse_dispatch_metadata('{"caller_key": "u-1"}')
    merged, _ = merge_participant_attributes(
        dispatch,
        {
            "conversation_id": "c-x",
            "reservation_code": CODE,
            "guest_name": NAME,
            "caller_key": "u-2",
        },
    )
    key = conversation_key(merged, room_name="room-1", caller_identity="p:1")

    assert merged.conversation_id is None and merged.reservation_code == CODE
    assert key.continued is False and key.caller == "u-1"
    assert key == conversation_key(dispatch, room_name="room-1", caller_identity="p:1")
