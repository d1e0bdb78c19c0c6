"""Questions a guest might ask, each with the knowledge-base files that answer it.

Written as people speak, not copied from the documents: the recall test measures whether
the shipped knowledge base and the hashing embedder find the right file anyway.
"""

from __future__ import annotations

HARBOR = "properties/harbor-view-loft/"
ALPINE = "properties/alpine-chalet/"
CASA = "properties/casa-del-sol/"
POLICIES = "policies/"

# (question, property_id or None, acceptable source files relative to examples/knowledge)
CASES: list[tuple[str, str | None, tuple[str, ...]]] = [
    (
        "what's the wifi password at the Portland apartment?",
        "harbor-view-loft",
        (HARBOR + "wifi-and-entertainment.txt",),
    ),
    (
        "Where am I supposed to leave my car at the loft?",
        "harbor-view-loft",
        (HARBOR + "parking-and-getting-around.md",),
    ),
    (
        "How do I get into the flat when I arrive, is somebody handing me keys?",
        "harbor-view-loft",
        (HARBOR + "arrival-and-departure.md",),
    ),
    (
        "the internet in the loft stopped working, what should I try",
        "harbor-view-loft",
        (HARBOR + "wifi-and-entertainment.txt",),
    ),
    (
        "how do I run the dishwasher?",
        "harbor-view-loft",
        (HARBOR + "kitchen-and-appliances.md",),
    ),
    (
        "any recommendations for seafood restaurants near Quay Street?",
        "harbor-view-loft",
        (HARBOR + "local-guide.html",),
    ),
    (
        "Can we bring our cat to the Maine loft?",
        "harbor-view-loft",
        (HARBOR + "house-rules.md",),
    ),
    (
        "Can I drive right up to the chalet?",
        "alpine-chalet",
        (ALPINE + "getting-here-and-parking.md", ALPINE + "arrival-and-departure.md"),
    ),
    (
        "how often does the train from Tasch run",
        "alpine-chalet",
        (ALPINE + "getting-here-and-parking.md",),
    ),
    (
        "We travel with two dogs, is there an extra charge?",
        "alpine-chalet",
        (ALPINE + "pets.md",),
    ),
    (
        "How do we heat up the sauna?",
        "alpine-chalet",
        (ALPINE + "sauna-fireplace-and-ski-room.md",),
    ),
    (
        "where do we put our skis and wet boots",
        "alpine-chalet",
        (ALPINE + "sauna-fireplace-and-ski-room.md",),
    ),
    (
        "what time must we be out of the chalet on our last day?",
        "alpine-chalet",
        (ALPINE + "arrival-and-departure.md",),
    ),
    (
        "What can the kids do in Zermatt if it's raining?",
        "alpine-chalet",
        (ALPINE + "local-guide.html",),
    ),
    (
        "which bags do we need for the rubbish in Zermatt",
        "alpine-chalet",
        (ALPINE + "house-rules.md",),
    ),
    (
        "Is the swimming pool warm in October?",
        "casa-del-sol",
        (CASA + "pool-and-garden.md",),
    ),
    (
        "How far do we have to walk to the beach from the villa?",
        "casa-del-sol",
        (CASA + "pool-and-garden.md", CASA + "arrival-and-departure.md"),
    ),
    (
        "we are arriving late at night in Marbella, how do we get the keys?",
        "casa-del-sol",
        (CASA + "arrival-and-departure.md",),
    ),
    (
        "the electricity went off at the villa, what do I do?",
        "casa-del-sol",
        (CASA + "house-rules-and-appliances.md",),
    ),
    (
        "is there space for two cars at Casa del Sol?",
        "casa-del-sol",
        (CASA + "parking-and-pets.md",),
    ),
    (
        "How do I switch on the air conditioning in the bedroom?",
        "casa-del-sol",
        (CASA + "wifi-and-technology.txt",),
    ),
    (
        "If I cancel ten days before my trip, how much do I get back?",
        None,
        (POLICIES + "cancellation-policy.md",),
    ),
    (
        "How much is held on my credit card as a security deposit and when is it released?",
        None,
        (POLICIES + "payment-and-deposit.md",),
    ),
    (
        "Am I allowed to smoke on the balcony?",
        None,
        (POLICIES + "smoking-parties-and-noise.md", ALPINE + "house-rules.md"),
    ),
    (
        "My mother uses a wheelchair — which of your homes would work for her?",
        None,
        (POLICIES + "accessibility.md",),
    ),
    (
        "Do you provide a crib for our baby?",
        None,
        (POLICIES + "guest-faq.md",),
    ),
    (
        "can I pay in cash when I get there?",
        None,
        (POLICIES + "payment-and-deposit.md",),
    ),
    (
        "We'd like to host a birthday party with some friends from town, is that ok?",
        None,
        (POLICIES + "smoking-parties-and-noise.md",),
    ),
]
