"""The Redis key and member encodings: round trips and the byte-order range queries rely on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workflows import _redis_layout as layout

# Any text that UTF-8 can encode (no lone surrogates), without NUL.
text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
names = st.text(alphabet=text, max_size=12)
typed = st.tuples(st.text(alphabet=text, min_size=1, max_size=8), st.binary(max_size=32))


def _lex_between(member: bytes, lo: bytes, hi: bytes) -> bool:
    """Redis ZRANGEBYLEX semantics for `[`/`(` bounds on equal-score members."""
    lo_ok = member >= lo[1:] if lo[:1] == b"[" else member > lo[1:]
    hi_ok = member <= hi[1:] if hi[:1] == b"[" else member < hi[1:]
    return lo_ok and hi_ok


@given(names, names, st.none() | names, typed, typed)
def test_checkpoint_members_round_trip(
    ns: str, checkpoint_id: str, parent: str | None, checkpoint: layout.Typed, meta: layout.Typed
) -> None:
    stored = layout.StoredCheckpoint(ns, checkpoint_id, parent or None, checkpoint, meta)
    assert layout.decode_checkpoint(layout.encode_checkpoint(stored)) == stored


@given(names, names, names, st.integers(-4, 2**31 - 1), st.integers(0, 2**64 - 1), names, names)
def test_write_members_round_trip(
    ns: str, cid: str, task: str, idx: int, seq: int, path: str, channel: str
) -> None:
    write = layout.StoredWrite(task, idx, seq, path, channel, ("msgpack", b"\x00\xff"))
    assert layout.decode_write(layout.encode_write(ns, cid, write)) == write


@given(names, names, names)
def test_run_members_round_trip(run_id: str, ns: str, cid: str) -> None:
    assert layout.decode_run(layout.encode_run(run_id, ns, cid)) == (run_id, ns, cid)


@given(st.lists(st.text(alphabet=text, max_size=10), min_size=2, max_size=6, unique=True))
def test_every_thread_id_gets_its_own_keys_and_is_recoverable(thread_ids: list[str]) -> None:
    keys = [layout.ThreadKeys.build("app:cp", t) for t in thread_ids]
    assert len({k for ks in keys for k in ks.all()}) == 5 * len(thread_ids)
    for thread_id, ks in zip(thread_ids, keys, strict=True):
        tag = ks.checkpoints.split(b"{", 1)[1].split(b"}", 1)[0]
        assert all(tag in k for k in ks.all())  # one hash tag, one Cluster slot
        assert layout.thread_id_from_key("app:cp", "checkpoints", ks.checkpoints) == thread_id
        assert layout.thread_id_from_key("app:cp", "runs", ks.checkpoints) is None


@given(st.lists(st.tuples(names, names, typed), max_size=12), names, names)
def test_lex_ranges_select_exactly_the_intended_checkpoints(
    entries: list[tuple[str, str, layout.Typed]], ns: str, pivot: str
) -> None:
    members = {
        (e_ns, cid): layout.encode_checkpoint(layout.StoredCheckpoint(e_ns, cid, None, t, t))
        for e_ns, cid, t in entries
    }

    lo, hi = layout.prefix_range(layout.ns_prefix(ns))
    in_ns = {key for key, m in members.items() if _lex_between(m, lo, hi)}
    assert in_ns == {key for key in members if key[0] == ns}

    before = {
        key for key, m in members.items() if _lex_between(m, lo, layout.before_bound(ns, pivot))
    }
    assert before == {key for key in members if key[0] == ns and key[1] < pivot}

    lo, hi = layout.prefix_range(layout.checkpoint_prefix(ns, pivot))
    exact = {key for key, m in members.items() if _lex_between(m, lo, hi)}
    assert exact == ({(ns, pivot)} & members.keys())

    in_order = sorted((m, key) for key, m in members.items() if key[0] == ns)
    assert [key[1] for _, key in in_order] == sorted(cid for e_ns, cid in members if e_ns == ns)


def test_successor_of_trailing_ff_bytes_carries() -> None:
    assert layout.successor(b"ab\xff\xff") == b"ac"
    assert layout.thread_scan_pattern("a*[b]", "runs") == "a\\*\\[b\\]:{*}:runs"
