"""Who sent a message, and what they may do.

Trust comes only from what the token server put in the participant's token:

* A participant is **staff** when its attribute `role` (configurable) holds a staff role
  *and* it cannot change its own attributes. LiveKit lets a participant set its own
  attributes only with the `canUpdateOwnMetadata` grant (visible to us as
  `permissions.can_update_metadata`); the project's token server never grants it and
  reserves the `role` attribute, so such a value was set by the server. A participant
  holding that grant is never staff, whatever its attributes say.
* The **linked caller** is the participant the session serves (its audio and `lk.chat`).
* Messages from the agent's own identity, and from other agent participants, are dropped
  without a reply (no loops between agents).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from livekit import rtc

__all__ = ["Access", "AccessPolicy", "ParticipantLike", "Sender"]


class Access(StrEnum):
    CALLER = "caller"
    """The linked caller, and staff."""
    STAFF = "staff"
    """Staff only (reveals staff data or changes the conversation's state)."""


class ParticipantLike(Protocol):
    @property
    def identity(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Sender:
    identity: str
    is_linked: bool
    is_staff: bool
    is_self: bool = False
    is_agent: bool = False

    @property
    def ignored(self) -> bool:
        """Messages from this sender are dropped without a reply."""
        return self.is_self or self.is_agent

    def may_use(self, access: Access) -> bool:
        if access is Access.STAFF:
            return self.is_staff
        return self.is_staff or self.is_linked

    @property
    def may_command(self) -> bool:
        """Whether this sender may use any command at all."""
        return self.is_staff or self.is_linked


def _can_set_own_attributes(participant: Any) -> bool:
    permissions = getattr(participant, "permissions", None)
    return bool(getattr(permissions, "can_update_metadata", False))


def _is_agent(participant: Any) -> bool:
    return getattr(participant, "kind", None) == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


class AccessPolicy:
    """Classifies senders; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        role_attribute: str = "role",
        staff_roles: Iterable[str] = ("staff",),
    ) -> None:
        self.role_attribute = role_attribute
        self.staff_roles = frozenset(r.strip() for r in staff_roles if r.strip())

    def is_staff(self, participant: ParticipantLike | None) -> bool:
        if participant is None or _is_agent(participant):
            return False
        if _can_set_own_attributes(participant):
            return False
        role = participant.attributes.get(self.role_attribute, "")
        roles = {part.strip() for part in role.split(",")}
        return bool(roles & self.staff_roles)

    def classify(
        self,
        identity: str,
        participant: ParticipantLike | None,
        *,
        local_identity: str,
        linked_identity: str | None,
    ) -> Sender:
        """The sender of a message from `identity` (`participant` None when unknown)."""
        return Sender(
            identity=identity,
            is_linked=linked_identity is not None and identity == linked_identity,
            is_staff=self.is_staff(participant),
            is_self=identity == local_identity,
            is_agent=participant is not None and _is_agent(participant),
        )
