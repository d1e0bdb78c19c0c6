"""Verification gating: code + last name, accents and case, the enumeration limit, shared
state across workers through Redis, and privacy of what the tools return."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from pms_fakes import call_tool, clock, tools_by_name

from tools.pms import (
    DemoPMS,
    InMemoryVerificationStore,
    RedisVerificationStore,
    pms_tools,
)
from tools.pms.demo.seed import load_seed
from tools.pms.ledger import InMemoryLedger, RedisLedger
from tools.pms.matching import code_from_speech, last_name_from_speech, names_match


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("garcia", "García"),
        ("GARCÍA", "García"),
        ("obrien", "O'Brien"),
        ("O Brien", "O'Brien"),
        ("o’brien", "O'Brien"),
        ("Mueller", "Müller"),
        ("Muller", "Müller"),
        ("Kjaergaard", "Kjærgaard"),
        ("dvorak", "Dvořák"),
        ("Nunez", "Núñez"),
        ("Hans Müller", "Müller"),
    ],
)
def test_names_match_across_accents_case_and_punctuation(said: str, stored: str) -> None:
    assert names_match(said, stored)


@pytest.mark.parametrize(
    ("said", "stored"),
    [("Miller", "Müller"), ("Garcias", "García"), ("", "García"), ("Brien", "O'Brien")],
)
def test_names_that_differ_do_not_match(said: str, stored: str) -> None:
    assert not names_match(said, stored)


def test_codes_and_names_are_read_from_speech() -> None:
    assert code_from_speech("it's H V L dash three three four two") == "HVL3342"
    assert code_from_speech("My confirmation code is cds-5160.") == "CDS5160"
    assert names_match(last_name_from_speech("my last name is García, G A R C I A"), "García")


async def _find(tools: dict, code: str, name: str, thread: str = "t1") -> dict:
    message = await call_tool(
        tools["find_reservation"], {"confirmation_code": code, "last_name": name}, thread_id=thread
    )
    return {"content": message.content, "artifact": message.artifact}


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        ("CDS-5102", "garcia", "CDS-5102"),
        ("cds 5102", "GARCÍA", "CDS-5102"),
        ("CDS5102", "María García", "CDS-5102"),
        ("HVL-2041", "obrien", "HVL-2041"),
        ("alp dash 7710", "Mueller", "ALP-7710"),
        ("ALP-7851", "kjaergaard", "ALP-7851"),
    ],
)
async def test_right_code_and_name_verify(
    pms: DemoPMS, code: str, name: str, expected: str
) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    result = await _find(tools, code, name)
    assert result["artifact"]["verified"] is True
    context = result["artifact"]["context"]
    assert context["verified"] is True and context["reservation_code"] == expected
    assert context["verified_reservation"]["code"] == expected
    assert context["property_id"] == context["verified_reservation"]["property_id"]
    assert "Thank you" in result["content"]


async def test_right_code_with_the_wrong_name_reveals_nothing(pms: DemoPMS) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    wrong = await _find(tools, "CDS-5102", "Garcia Lopez")
    unknown = await _find(tools, "CDS-9999", "García")
    assert wrong["artifact"] == {"verified": False, "attempts_left": 4}
    # The same sentence for a wrong name and a wrong code: nothing to enumerate.
    assert wrong["content"] == unknown["content"]
    assert "5102" not in wrong["content"] and "Casa" not in wrong["content"]
    # Two Garcías, two codes: each code only opens its own booking.
    chalet = await _find(tools, "ALP-7935", "garcia")
    assert chalet["artifact"]["reservation"]["property_id"] == "alpine-chalet"


async def test_five_failures_lock_the_conversation_even_for_the_right_details(
    pms: DemoPMS,
) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    # Different codes and names each time, so only the per-conversation limit is in play.
    lefts = [
        (await _find(tools, f"HVL-334{i}", f"Johnsen{i}"))["artifact"]["attempts_left"]
        for i in range(4)
    ]
    assert lefts == [4, 3, 2, 1]
    fifth = await _find(tools, "HVL-3349", "Jonson")
    assert fifth["artifact"]["locked"] is True
    locked = await _find(tools, "HVL-3342", "Johnson")
    assert locked["artifact"] == {"verified": False, "locked": True}
    assert "can't look up reservations on this call" in locked["content"]
    # Another conversation is unaffected.
    other = await _find(tools, "HVL-3342", "Johnson", thread="t2")
    assert other["artifact"]["verified"] is True


async def test_incomplete_details_do_not_count_as_attempts(pms: DemoPMS) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    for _ in range(6):
        result = await _find(tools, "  ", "Johnson")
        assert "both the confirmation code and the last name" in result["content"]
    assert (await _find(tools, "HVL-3342", "Johnson"))["artifact"]["verified"] is True


async def test_reservation_tools_need_verification_in_this_conversation(pms: DemoPMS) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    for name, args in [
        ("list_upsell_offers", {}),
        ("list_gap_night_offers", {}),
        ("request_upsell", {"offer": "late checkout"}),
        ("leave_feedback", {"rating": 5, "comment": "Great"}),
    ]:
        message = await call_tool(tools[name], args, thread_id="t1")
        assert message.artifact == {"needs_verification": True}
        assert "confirmation code" in message.content
    await _find(tools, "HVL-3342", "Johnson", thread="t1")
    verified = await call_tool(tools["list_upsell_offers"], {}, thread_id="t1")
    assert "late checkout until 1 PM for 40 dollars" in verified.content
    # Verification belongs to the conversation that did it.
    stranger = await call_tool(tools["list_upsell_offers"], {}, thread_id="t2")
    assert stranger.artifact == {"needs_verification": True}


async def test_without_a_thread_id_nothing_is_remembered(pms: DemoPMS) -> None:
    tools = tools_by_name(pms_tools(pms, clock=clock))
    first = await call_tool(
        tools["find_reservation"],
        {"confirmation_code": "HVL-3342", "last_name": "Johnson"},
        thread_id=None,
    )
    assert first.artifact["verified"] is True
    after = await call_tool(tools["list_upsell_offers"], {}, thread_id=None)
    assert after.artifact == {"needs_verification": True}


async def test_tool_output_never_contains_contacts_or_payment(pms: DemoPMS) -> None:
    seed = load_seed()
    secrets = {"Visa", "Mastercard", "American Express", "411111"}
    for r in seed.reservations:
        secrets |= {r.email, r.phone, r.email.split("@")[0]}
    tools = tools_by_name(pms_tools(pms, clock=clock))
    outputs = []
    for index, r in enumerate(seed.reservations):
        thread = f"privacy-{index}"
        found = await call_tool(
            tools["find_reservation"],
            {"confirmation_code": r.code, "last_name": r.last_name},
            thread_id=thread,
        )
        outputs.append(found)
        for name in ("list_upsell_offers", "list_gap_night_offers"):
            outputs.append(await call_tool(tools[name], {}, thread_id=thread))
    text = json.dumps([[m.content, m.artifact] for m in outputs], ensure_ascii=False)
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == [], leaked
    assert "@example" in text  # only masked hints such as 'm…@example.es'


async def test_redis_store_shares_verification_and_lockout_between_workers(
    pms: DemoPMS, redis_url: str
) -> None:
    client_a = aioredis.from_url(redis_url)
    client_b = aioredis.from_url(redis_url)
    try:
        worker_a = tools_by_name(
            pms_tools(pms, store=RedisVerificationStore(client_a), clock=clock)
        )
        worker_b = tools_by_name(
            pms_tools(pms, store=RedisVerificationStore(client_b), clock=clock)
        )
        await _find(worker_a, "CDS-5160", "Núñez", thread="call-7")
        offers = await call_tool(worker_b["list_upsell_offers"], {}, thread_id="call-7")
        assert "early check-in from 1 PM for 50 euros" in offers.content

        for i in range(3):
            await _find(worker_a, "ALP-7826", f"Rosso{i}", thread="call-8")
        for i in range(2):
            await _find(worker_b, "ALP-7826", f"Rosa{i}", thread="call-8")
        locked = await _find(worker_a, "ALP-7826", "Rossi", thread="call-8")
        assert locked["artifact"]["locked"] is True
        assert await client_a.ttl("pms:verify:call-8:failures") > 0
    finally:
        await client_a.aclose()
        await client_b.aclose()


async def test_in_memory_store_expires_entries() -> None:
    now = [0.0]
    store = InMemoryVerificationStore(ttl_s=10, monotonic=lambda: now[0])
    assert await store.record_failure("c") == 1
    await store.record_request("c", "late-checkout", "Late checkout")
    now[0] = 11.0
    assert await store.failures("c") == 0
    assert await store.requested("c") == {}


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_ledger_runs_an_action_once_under_concurrency(backend: str, redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    ledger = InMemoryLedger() if backend == "memory" else RedisLedger(client, poll_interval_s=0.01)
    runs = 0

    async def action() -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return f"receipt-{runs}"

    try:
        results = await asyncio.gather(*(ledger.run_once("k", action) for _ in range(5)))
        assert runs == 1
        assert {value for value, _ in results} == {"receipt-1"}
        assert sorted(replayed for _, replayed in results) == [False, True, True, True, True]
    finally:
        await client.aclose()


async def test_redis_ledger_releases_the_claim_when_the_action_fails(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    ledger = RedisLedger(client)

    async def broken() -> str:
        raise RuntimeError("remote call failed")

    async def working() -> str:
        return "ok"

    try:
        with pytest.raises(RuntimeError):
            await ledger.run_once("k", broken)
        assert await ledger.run_once("k", working) == ("ok", False)
    finally:
        await client.aclose()
