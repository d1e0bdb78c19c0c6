"""Which conversation a call continues and whose verification it uses, from trusted input only.

Trusted: the job's dispatch metadata, which only the token server (building it from the
authenticated caller) or the operator (`lk dispatch create`) can write, since it travels in a
JWT signed with the LiveKit API secret. Not trusted to pick a conversation: participant
attributes, and anything else a participant could choose. So:

1. a dispatch `conversation_id` continues that conversation;
2. a dispatch reservation code + guest name (both from the dispatch) continue that stay's;
3. otherwise the call gets the thread of this room and caller identity, which is new for
   every token-server token (fresh room, unique identity).

Verification records belong to the dispatch's `caller_key` (the verified end user) when the
token server set one, else to the LiveKit identity of the participant actually talking.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.metadata import DispatchMetadata
from workflows.thread import conversation_thread_id

__all__ = ["ConversationKey", "conversation_key"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    thread_id: str
    # whose verified status and failed attempts this call reads and writes
    caller: str
    # True when the thread came from the dispatch (a continued conversation)
    continued: bool


def conversation_key(
    metadata: DispatchMetadata, *, room_name: str, caller_identity: str
) -> ConversationKey:
    caller = metadata.from_dispatch("caller_key") or caller_identity
    conversation = metadata.from_dispatch("conversation_id")
    code = metadata.from_dispatch("reservation_code")
    guest = metadata.from_dispatch("guest_name")
    if conversation or (code and guest):
        thread = conversation_thread_id(
            conversation_id=conversation, reservation_code=code, guest_name=guest
        )
        return ConversationKey(thread, caller, continued=True)
    thread = conversation_thread_id(room=room_name, caller_identity=caller_identity)
    return ConversationKey(thread, caller, continued=False)
