"""The gap-night workflow: offer the discounted free nights next to the caller's stay.

Same shape as the upsell workflow (find the reservation, offer, confirm, book); runnable by
the assistant and by `/workflow gap_nights`.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from tools.pms import PMS, GuestDesk, Reservation, UpsellOffer
from tools.pms.clock import Clock
from tools.pms.verification import VerificationStore
from workflows.upsell import SPEAKING_NODES, build_offer_workflow

__all__ = ["SPEAKING_NODES", "WORKFLOW_NAME", "build_gap_nights_graph"]

WORKFLOW_NAME = "gap_nights"


async def _gap_offers(pms: PMS, reservation: Reservation) -> list[UpsellOffer]:
    return await pms.list_gap_night_offers(reservation)


def build_gap_nights_graph(
    pms: PMS,
    *,
    store: VerificationStore | None = None,
    desk: GuestDesk | None = None,
    clock: Clock | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Offer the gap nights around the caller's stay at the configured discount."""
    return build_offer_workflow(
        desk or GuestDesk(pms, store=store, clock=clock),
        lister=_gap_offers,
        lead="The nights next to your stay are free, and discounted:",
        nothing_to_offer="There are no discounted nights next to your stay right now.",
        checkpointer=checkpointer,
        name=WORKFLOW_NAME,
    )
