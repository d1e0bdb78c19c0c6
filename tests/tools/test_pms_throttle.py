"""Verification is throttled by target (reservation code, last name), not by conversation.

The brute-force test replays the attack from the issue: 701 last-name guesses for one known
confirmation code, spread over 141 conversations and two real worker processes sharing Redis.
It must never find the booking, and the lock must hold for a new conversation afterwards.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import redis.asyncio as aioredis
from pms_fakes import call_tool, tools_by_name

from tools.pms import (
    DemoPMS,
    GuestDesk,
    InMemoryVerificationStore,
    InMemoryVerificationThrottle,
    RedisVerificationStore,
    RedisVerificationThrottle,
    ThrottlePolicy,
    pms_tools,
)

CODE, NAME = "HVL-3342", "Johnson"  # a seeded demo booking
GUESSES = 701
CONVERSATIONS = 141


def _guesses() -> list[str]:
    """700 wrong last names and the right one last, as an attacker's list would end."""
    return [f"Johnsen{i:03d}" for i in range(GUESSES - 1)] + [NAME]


_ATTACKER = textwrap.dedent(
    """
    import asyncio, json, sys
    import redis.asyncio as aioredis
    from langchain_core.messages import ToolMessage
    from tools.pms import (
        DemoPMS, GuestDesk, RedisVerificationStore, RedisVerificationThrottle, ThrottlePolicy,
        pms_tools,
    )

    # Default limits, but back-off pauses short enough for this attacker to wait them out
    # within the test: what must stop it is the lock, which a new conversation cannot reset.
    POLICY = ThrottlePolicy(backoff_base_s=0.01, backoff_max_s=0.05)

    async def main() -> None:
        redis_url, demo_path, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        client = aioredis.from_url(redis_url)
        pms = DemoPMS(demo_path)
        outcomes = []
        for conversation, names in plan:
            # Every conversation is a new call by a new caller identity, as an attacker
            # minting fresh tokens would get.
            desk = GuestDesk(
                pms,
                store=RedisVerificationStore(client),
                throttle=RedisVerificationThrottle(client, POLICY),
                caller=f"attacker-{conversation}",
            )
            tool = next(t for t in pms_tools(pms, desk=desk) if t.name == "find_reservation")
            for name in names:
                while True:  # a patient attacker retries a guess the back-off refused
                    result = await tool.ainvoke(
                        {"type": "tool_call", "id": "c", "name": tool.name,
                         "args": {"confirmation_code": sys.argv[4], "last_name": name}},
                        config={"configurable": {"thread_id": conversation}},
                    )
                    assert isinstance(result, ToolMessage)
                    wait = result.artifact.get("retry_after_s")
                    if wait is None:
                        break
                    await asyncio.sleep(wait)
                outcomes.append(result.artifact.get("verified") is True)
        await pms.aclose()
        await client.aclose()
        print(json.dumps({"attempts": len(outcomes), "found": sum(outcomes)}))

    asyncio.run(main())
    """
)


async def test_701_guesses_over_141_conversations_in_two_processes_never_find_the_booking(
    pms: DemoPMS, redis_url: str, tmp_path: Path
) -> None:
    names = _guesses()
    per_conversation = -(-GUESSES // CONVERSATIONS)  # 5: the per-conversation limit
    plan = [
        (f"attack-{c}", names[c * per_conversation : (c + 1) * per_conversation])
        for c in range(CONVERSATIONS)
    ]
    assert sum(len(guesses) for _, guesses in plan) == GUESSES
    demo_path = str(tmp_path / "demo.sqlite3")  # seeded by the fixture, shared by both
    script = tmp_path / "attacker.py"
    script.write_text(_ATTACKER)
    halves = [plan[0::2], plan[1::2]]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            redis_url,
            demo_path,
            json.dumps(half),
            CODE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for half in halves
    ]
    results = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))

    assert sum(r["attempts"] for r in results) == GUESSES
    assert sum(r["found"] for r in results) == 0
    # A new conversation by a new caller does not reset the lock on the code.
    client = aioredis.from_url(redis_url)
    try:
        desk = GuestDesk(
            pms,
            store=RedisVerificationStore(client),
            throttle=RedisVerificationThrottle(client),
            caller="someone-new",
        )
        result = await desk.verify("fresh-conversation", CODE, NAME)
        assert result.outcome == "locked"
        assert result.reservation is None
    finally:
        await client.aclose()


async def test_ten_failures_lock_a_code_for_every_conversation_even_with_the_right_name(
    pms: DemoPMS,
) -> None:
    now = [0.0]
    throttle = InMemoryVerificationThrottle(monotonic=lambda: now[0])
    store = InMemoryVerificationStore()
    outcomes = []
    for attempt in range(12):
        desk = GuestDesk(pms, store=store, throttle=throttle, caller=f"caller-{attempt}")
        outcomes.append((await desk.verify(f"conv-{attempt}", CODE, f"Jonsen{attempt}")).outcome)
        now[0] += 1000  # wait out every back-off pause
    assert outcomes[:10] == ["mismatch"] * 10
    assert outcomes[10:] == ["locked", "locked"]
    desk = GuestDesk(pms, store=store, throttle=throttle, caller="the-real-guest")
    assert (await desk.verify("conv-new", CODE, NAME)).outcome == "locked"
    now[0] += ThrottlePolicy().lock_s + 1
    verified = await desk.verify("conv-new", CODE, NAME)
    assert verified.outcome == "verified" and verified.reservation is not None


async def test_after_three_failures_a_code_pauses_between_attempts(pms: DemoPMS) -> None:
    now = [0.0]
    tools = tools_by_name(
        pms_tools(pms, throttle=InMemoryVerificationThrottle(monotonic=lambda: now[0]))
    )
    for i in range(3):
        args = {"confirmation_code": CODE, "last_name": f"Jonsen{i}"}
        wrong = await call_tool(tools["find_reservation"], args, thread_id=f"t{i}")
        assert wrong.artifact["verified"] is False and "attempts_left" in wrong.artifact
    args = {"confirmation_code": CODE, "last_name": NAME}
    paused = await call_tool(tools["find_reservation"], args, thread_id="t9")
    assert paused.artifact == {"verified": False, "retry_after_s": 2.0}
    assert "pause" in str(paused.content)
    now[0] += 2.5
    verified = await call_tool(tools["find_reservation"], args, thread_id="t9")
    assert verified.artifact["verified"] is True


async def test_guessing_codes_for_one_last_name_is_throttled_too(pms: DemoPMS) -> None:
    now = [0.0]
    policy = ThrottlePolicy()
    throttle = InMemoryVerificationThrottle(policy, monotonic=lambda: now[0])
    outcomes = []
    for i in range(policy.name_lock_after + 1):
        desk = GuestDesk(pms, throttle=throttle, caller=f"c{i}")
        outcomes.append((await desk.verify(f"t{i}", f"HVL-{9000 + i}", NAME)).outcome)
        now[0] += 1000
    assert outcomes[-1] == "locked"
    assert (await GuestDesk(pms, throttle=throttle).verify("x", CODE, NAME)).outcome == "locked"


async def test_parallel_attempts_cannot_slip_past_the_limit(pms: DemoPMS, redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    lookups = 0
    original = pms.find_reservation

    async def counting(code: str, last_name: str):  # type: ignore[no-untyped-def]
        nonlocal lookups
        lookups += 1
        return await original(code, last_name)

    pms.find_reservation = counting  # type: ignore[method-assign]
    try:
        throttle = RedisVerificationThrottle(client)
        desks = [GuestDesk(pms, throttle=throttle, caller=f"c{i}") for i in range(60)]
        results = await asyncio.gather(
            *(desk.verify(f"t{i}", CODE, f"Guess{i}") for i, desk in enumerate(desks))
        )
    finally:
        await client.aclose()
    assert all(r.outcome != "verified" for r in results)
    assert lookups <= ThrottlePolicy().code_lock_after
