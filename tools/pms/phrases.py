"""What the PMS layer says: dates, money and lists as a person says them on the phone, and the
sentences the tools and backends answer with. Short, speakable, no markup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from tools.pms.models import (
    Availability,
    FeedbackReceipt,
    Money,
    Property,
    Quote,
    Reservation,
    UpsellOffer,
    UpsellReceipt,
)

__all__ = [
    "NO_LONGER_OFFERED",
    "RATING_RANGE",
    "RESERVATION_GONE",
    "TOPICS",
    "availability_text",
    "cannot_quote",
    "feedback_text",
    "gap_offers_text",
    "join_words",
    "mask_email",
    "mask_phone",
    "match_topics",
    "offer_phrase",
    "plural",
    "property_text",
    "quote_text",
    "receipt_text",
    "reservation_text",
    "say_date",
    "say_money",
    "say_range",
    "say_time",
    "unknown_property",
    "upsell_offers_text",
]

_CURRENCY_WORDS = {
    "USD": ("dollar", "dollars"),
    "EUR": ("euro", "euros"),
    "GBP": ("pound", "pounds"),
    "AUD": ("Australian dollar", "Australian dollars"),
    "CAD": ("Canadian dollar", "Canadian dollars"),
}


def say_date(day: date, *, today: date | None = None) -> str:
    """'Friday, March 14', with the year only when it is not the current one."""
    text = f"{day:%A}, {day:%B} {day.day}"
    if today is not None and day.year != today.year:
        text += f", {day.year}"
    return text


def say_range(start: date, end: date, *, today: date | None = None) -> str:
    return f"{say_date(start, today=today)} to {say_date(end, today=today)}"


def say_time(value: str | None) -> str:
    """'16:00' → '4 PM', '12:00' → 'noon', '10:30' → '10:30 AM'; other text unchanged."""
    if not value:
        return "the usual time"
    try:
        hour_text, minute_text = value.strip()[:5].split(":")
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        return value
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return value
    if minute == 0 and hour == 12:
        return "noon"
    if minute == 0 and hour == 0:
        return "midnight"
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def _amount(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def say_money(money: Money) -> str:
    """'189 euros', '1,240.50 dollars', 'CHF 240'."""
    number = _amount(money.amount)
    words = _CURRENCY_WORDS.get(money.currency)
    if words is None:
        return f"{money.currency} {number}"
    singular, many = words
    return f"{number} {singular if money.amount == 1 else many}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def join_words(items: Sequence[str], *, conjunction: str = "and") -> str:
    """'a, b and c'; items that contain commas are separated by semicolons instead."""
    items = [item for item in items if item]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    separator = "; " if any("," in item for item in items) else ", "
    last = f"{separator.strip()} {conjunction}" if separator == "; " else f" {conjunction}"
    return f"{separator.join(items[:-1])}{last} {items[-1]}"


def mask_email(email: str | None) -> str | None:
    """'maria.garcia@example.es' → 'm…@example.es' (never the full address)."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if local else None


def mask_phone(phone: str | None) -> str | None:
    """Only the last two digits: 'ending in 21'."""
    digits = [ch for ch in phone or "" if ch.isdigit()]
    if len(digits) < 4:
        return None
    return f"ending in {''.join(digits[-2:])}"


# -- sentences both PMS backends raise ---------------------------------------------------------

RESERVATION_GONE = "I can't find that reservation any more."
RATING_RANGE = "Ratings go from 1 to 5 stars."


def no_longer_offered(kind: str) -> str:
    return (
        f"That {kind} isn't available for your stay any more. "
        "Shall I check what I can offer instead?"
    )


NO_LONGER_OFFERED = no_longer_offered("offer")


def unknown_property(homes: str = "properties") -> str:
    return f"I don't know that property. Which of our {homes} do you mean?"


def cannot_quote(name: str, unavailable_nights: Sequence[date]) -> str:
    """Why a stay has no quote: the taken nights (first three), else that it is not bookable."""
    nights = join_words([say_date(night) for night in unavailable_nights[:3]])
    reason = f"already booked on {nights}" if nights else "not bookable for those dates"
    return f"{name} is {reason}, so I can't quote those dates."


# topic → words that point at it in a caller's question
TOPICS: dict[str, tuple[str, ...]] = {
    "wifi": ("wifi", "wi-fi", "wi fi", "internet", "password", "network", "wlan"),
    "parking": ("park", "car", "garage", "drive"),
    "check_in": ("check-in", "check in", "checkin", "arrival", "arrive", "key", "door code"),
    "check_out": ("check-out", "check out", "checkout", "departure", "leave", "leaving"),
    "address": ("address", "where", "location", "located", "directions"),
    "pets": ("pet", "dog", "cat", "animal"),
    "quiet_hours": ("quiet", "noise", "noisy", "loud", "music"),
    "smoking": ("smok", "vap", "cigar"),
    "house_rules": ("rule", "allowed", "policy", "policies"),
    "amenities": ("amenit", "facilit", "pool", "sauna", "fireplace", "feature", "equipment"),
    "capacity": ("sleep", "capacity", "how many", "bedroom", "guests", "people"),
}


def match_topics(topic: str | None) -> list[str]:
    if not topic:
        return []
    text = topic.casefold()
    return [name for name, words in TOPICS.items() if any(word in text for word in words)]


def _hours(value: str | None) -> str | None:
    if not value:
        return None
    parts = [p.strip() for p in value.replace("–", "-").split("-") if p.strip()]
    if len(parts) == 2:
        return f"from {say_time(parts[0])} to {say_time(parts[1])}"
    return value


def _topic_sentence(prop: Property, topic: str) -> str | None:
    if topic == "wifi":
        if prop.wifi is None:
            return None
        if prop.wifi.password:
            return (
                f"The Wi-Fi network is {prop.wifi.network} and the password is "
                f"{prop.wifi.password}."
            )
        return f"The Wi-Fi network is {prop.wifi.network}."
    if topic == "parking":
        return prop.parking
    if topic == "check_in":
        if not prop.check_in_time:
            return None
        method = f" {prop.check_in_method}" if prop.check_in_method else ""
        return f"Check-in is from {say_time(prop.check_in_time)}.{method}"
    if topic == "check_out":
        if not prop.check_out_time:
            return None
        return f"Check-out is by {say_time(prop.check_out_time)}."
    if topic == "address":
        return f"The address is {prop.address.one_line()}."
    if topic == "pets":
        return prop.pets
    if topic == "quiet_hours":
        hours = _hours(prop.quiet_hours)
        return f"Quiet hours are {hours}." if hours else None
    if topic == "smoking":
        return prop.smoking
    if topic == "house_rules":
        return " ".join(prop.house_rules) or None
    if topic == "amenities":
        return f"It has {join_words(list(prop.amenities))}." if prop.amenities else None
    if topic == "capacity":
        rooms = f", with {plural(prop.bedrooms, 'bedroom')}" if prop.bedrooms else ""
        return f"{prop.name} sleeps up to {prop.max_guests} guests{rooms}."
    return None


def property_text(prop: Property, topics: Sequence[str], asked: str | None) -> str:
    """The sentences for the asked topics; an overview when nothing specific was asked or the
    booking system has nothing on the asked topic (said so first)."""
    sentences = [s for s in (_topic_sentence(prop, t) for t in topics) if s]
    if sentences:
        return " ".join(sentences)
    city = prop.address.city
    overview = [
        f"{prop.name} is {_article(prop.kind)} {prop.kind} in {city} "
        f"that sleeps up to {prop.max_guests} guests."
    ]
    times = [
        _topic_sentence(prop, "check_in") if prop.check_in_time else None,
        _topic_sentence(prop, "check_out") if prop.check_out_time else None,
    ]
    overview += [t.split(".")[0] + "." for t in times if t]
    if asked:
        overview.insert(0, f"The booking system has no details about {asked} for {prop.name}.")
    return " ".join(overview)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def reservation_text(res: Reservation, prop: Property | None, today: date) -> str:
    name = res.guest_first_name or res.guest_last_name
    stay = say_range(res.arrival, res.departure, today=today)
    party = plural(res.guests, "guest")
    where = res.property_name
    if res.status == "cancelled":
        return f"Thank you, {name}. Reservation {res.code} at {where}, {stay}, was cancelled."
    if res.status == "no_show":
        return f"Thank you, {name}. Reservation {res.code} at {where} was marked as a no-show."
    if res.status == "checked_out":
        return f"Thank you, {name}. Your stay at {where}, {stay}, has already ended."
    parts = []
    if res.status == "in_house":
        leave = say_date(res.departure, today=today)
        parts.append(f"Thank you, {name}. You're staying at {where} until {leave}.")
    else:
        parts.append(
            f"Thank you, {name}. I found reservation {res.code} at {where}: {stay}, "
            f"{plural(res.nights, 'night')} for {party}."
        )
    if prop is not None and prop.check_in_time and res.status == "confirmed":
        parts.append(f"Check-in is from {say_time(prop.check_in_time)}.")
    if prop is not None and prop.check_out_time:
        parts.append(f"Check-out is by {say_time(prop.check_out_time)}.")
    if res.extras:
        parts.append(f"Extras on the booking: {join_words(list(res.extras))}.")
    if res.total is not None:
        parts.append(f"The total is {say_money(res.total)}.")
    return " ".join(parts)


def _rate_phrase(quote: Quote) -> str:
    amounts = sorted({night.amount.amount for night in quote.nights})
    if not amounts:
        return ""
    low = Money(amount=amounts[0], currency=quote.currency)
    if len(amounts) == 1:
        return f"at {say_money(low)} a night"
    high = Money(amount=amounts[-1], currency=quote.currency)
    return f"at {say_money(low)} to {say_money(high)} a night"


def quote_text(quote: Quote, prop: Property, today: date) -> str:
    nights = len(quote.nights)
    stay = say_range(quote.arrival, quote.departure, today=today)
    parts = [
        f"For {plural(nights, 'night')} at {prop.name}, {stay}, for "
        f"{plural(quote.adults + quote.children, 'guest')}: the nights come to "
        f"{say_money(quote.accommodation)} {_rate_phrase(quote)}."
    ]
    extras = [f"a {f.name.lower()} of {say_money(f.amount)}" for f in quote.fees]
    extras += [f"{t.name} of {say_money(t.amount)}" for t in quote.taxes if not t.included]
    if extras:
        parts.append(f"On top of that there is {join_words(extras)}.")
    included = [t.name for t in quote.taxes if t.included]
    if included:
        parts.append(f"The price includes {join_words(included)}.")
    parts.append(f"The total is {say_money(quote.total)}.")
    return " ".join(parts)


def availability_text(av: Availability, prop: Property, today: date) -> str:
    stay = say_range(av.arrival, av.departure, today=today)
    nights = (av.departure - av.arrival).days
    if av.available:
        text = (
            f"Good news: {prop.name} is free {stay.replace(' to ', ' until ', 1)}, "
            f"{plural(nights, 'night')} for {plural(av.guests, 'guest')}."
        )
        if av.quote is not None:
            text += f" The total would be {say_money(av.quote.total)}, fees and taxes included."
        return text
    booked = [say_date(n, today=today) for n in av.unavailable_nights[:3]]
    more = len(av.unavailable_nights) - len(booked)
    nights_text = join_words(booked + ([plural(more, "more night")] if more > 0 else []))
    text = f"Sorry, {prop.name} is already booked on {nights_text}."
    if not av.unavailable_nights:
        text = f"Sorry, {prop.name} can't be booked for {stay}."
    if av.next_window is not None:
        start, end = av.next_window
        text += (
            f" The next free {plural(nights, 'night')} start on "
            f"{say_date(start, today=today)}, until {say_date(end, today=today)}."
        )
    return text


def offer_phrase(offer: UpsellOffer) -> str:
    """'late checkout until 2 PM for 50 euros'; 'stay 1 more night, until …, for 90 euros'."""
    name = f"{offer.name[:1].lower()}{offer.name[1:]}"
    joiner = ", for" if "," in name else " for"
    return f"{name}{joiner} {say_money(offer.price)}"


def upsell_offers_text(offers: Sequence[UpsellOffer]) -> str:
    if not offers:
        return "There are no extras I can add to your stay right now."
    phrases = [offer_phrase(o) for o in offers]
    choices = join_words(phrases, conjunction="or")
    return f"For your stay I can offer {choices}. Would you like any of these?"


def gap_offers_text(offers: Sequence[UpsellOffer]) -> str:
    if not offers:
        return "There are no discounted nights next to your stay right now."
    phrases = []
    for offer in offers:
        phrase = offer_phrase(offer)
        if offer.regular_price is not None:
            phrase += f" instead of {say_money(offer.regular_price)}"
        phrases.append(phrase)
    discount = offers[0].discount_percent
    lead = f"The nights next to your stay are free, at {discount} percent off: "
    return f"{lead}{join_words(phrases, conjunction='or')}. Would you like one of these?"


def receipt_text(receipt: UpsellReceipt, today: date) -> str:
    name = f"{receipt.name[:1].lower()}{receipt.name[1:]}"
    if receipt.kind == "gap_night" and receipt.status == "confirmed" and not receipt.replayed:
        moved = [
            f"you now check out on {say_date(receipt.new_departure, today=today)}"
            if receipt.new_departure
            else "",
            f"you now arrive on {say_date(receipt.new_arrival, today=today)}"
            if receipt.new_arrival
            else "",
        ]
        change = join_words([m for m in moved if m]) or "your stay is extended"
        return (
            f"Done: {change}. The extra nights cost {say_money(receipt.price)}. "
            f"Your reference is {receipt.reference}."
        )
    if receipt.replayed:
        lead = f"That's already taken care of: {name}, {say_money(receipt.price)}"
        return f"{lead}, reference {receipt.reference}."
    if receipt.status == "requested":
        return (
            f"I've passed your request for {name}, {say_money(receipt.price)}, to the team; "
            f"they'll confirm it with you. Your reference is {receipt.reference}."
        )
    return (
        f"Done: {name} is booked for {say_money(receipt.price)}. "
        f"Your reference is {receipt.reference}."
    )


def feedback_text(receipt: FeedbackReceipt) -> str:
    if receipt.replayed:
        return "I've already passed that feedback on. Thank you again."
    return (
        f"Thank you. I've passed your {receipt.rating}-star feedback on to the team. "
        f"The reference is {receipt.reference}."
    )
