"""Property-management-system access: the `PMS` protocol, its backends and LangChain tools.

pms = build_pms(PMSConfig(...))               # DemoPMS or ApaleoPMS, from PMS_BACKEND
tools = pms_tools(pms, store=build_verification_store(redis))
"""

from tools.pms.apaleo import ApaleoClient, ApaleoPMS
from tools.pms.calendar import GapNightPolicy
from tools.pms.clock import Clock, fixed_clock, utc_now
from tools.pms.demo import DemoPMS
from tools.pms.desk import GuestDesk
from tools.pms.errors import OfferUnavailable, PMSError, PMSUnavailable, StayRejected
from tools.pms.factory import (
    PMSBackend,
    PMSConfig,
    PMSConfigError,
    build_ledger,
    build_pms,
    build_verification_store,
    build_verification_throttle,
    throttle_policy,
)
from tools.pms.models import (
    Availability,
    FeedbackReceipt,
    Money,
    Property,
    PropertySummary,
    Quote,
    Reservation,
    UpsellOffer,
    UpsellReceipt,
)
from tools.pms.protocol import PMS
from tools.pms.throttle import (
    InMemoryVerificationThrottle,
    RedisVerificationThrottle,
    ThrottlePolicy,
    VerificationThrottle,
)
from tools.pms.tools import conversation_of, pms_tools, verified_context
from tools.pms.verification import (
    InMemoryVerificationStore,
    RedisVerificationStore,
    VerificationStore,
)

__all__ = [
    "PMS",
    "ApaleoClient",
    "ApaleoPMS",
    "Availability",
    "Clock",
    "DemoPMS",
    "FeedbackReceipt",
    "GapNightPolicy",
    "GuestDesk",
    "InMemoryVerificationStore",
    "InMemoryVerificationThrottle",
    "Money",
    "OfferUnavailable",
    "PMSBackend",
    "PMSConfig",
    "PMSConfigError",
    "PMSError",
    "PMSUnavailable",
    "Property",
    "PropertySummary",
    "Quote",
    "RedisVerificationStore",
    "RedisVerificationThrottle",
    "Reservation",
    "StayRejected",
    "ThrottlePolicy",
    "UpsellOffer",
    "UpsellReceipt",
    "VerificationStore",
    "VerificationThrottle",
    "build_ledger",
    "build_pms",
    "build_verification_store",
    "build_verification_throttle",
    "conversation_of",
    "fixed_clock",
    "pms_tools",
    "throttle_policy",
    "utc_now",
    "verified_context",
]
