"""A local HTTP server speaking the documented Apaleo endpoints the adapter uses.

Runs on 127.0.0.1 with aiohttp inside the test's event loop. It keeps a small but
real-shaped data set (one live property, one archived, two unit groups, reservations in
every status, rate plans with VAT and city tax, bookable services) and computes
availability and offers from it, so the adapter is tested against behaviour, not canned
strings. Faults (429 with Retry-After, 5xx, token revocation) are injected per path.

Endpoints: POST /connect/token · GET /inventory/v1/properties(/{id}) ·
GET /inventory/v1/unit-groups · GET /settings/v1/properties/{id}/time-slice-definitions ·
GET /booking/v1/reservations(/{id}) · GET /booking/v1/reservations/{id}/service-offers ·
PATCH /booking/v1/reservations/{id} · PUT /booking/v1/reservation-actions/{id}/book-service ·
GET /availability/v1/unit-groups · GET /booking/v1/offers
"""

from __future__ import annotations

import base64
import copy
import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

CLIENT_ID = "SPRE-AC-VOICE"
CLIENT_SECRET = "s3cr3t-for-tests"
_CENT = Decimal("0.01")
_VAT = Decimal("7")
_CITY_TAX = Decimal("7.5")


def _money(amount: Decimal, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": float(amount.quantize(_CENT, rounding=ROUND_HALF_UP)), "currency": currency}


def _iso(day: date, time: str, offset: str = "+01:00") -> str:
    return f"{day.isoformat()}T{time}{offset}"


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


class FakeApaleo:
    """State and handlers of the fake; `url` is set once `start()` has bound a port."""

    def __init__(self, *, today: date, token_ttl_s: int = 3600) -> None:
        self.today = today
        self.token_ttl_s = token_ttl_s
        self.url = ""
        self.log: list[Logged] = []
        self.token_requests = 0
        self.valid_tokens: set[str] = set()
        self._token_ids = itertools.count(1)
        self._faults: dict[str, deque[Fault]] = {}
        self._runner: web.AppRunner | None = None
        self.properties = self._properties()
        self.unit_groups = self._unit_groups()
        self.services = self._services()
        self.reservations = self._reservations()

    # -- data ------------------------------------------------------------------------------------

    def _properties(self) -> dict[str, dict[str, Any]]:
        live = {
            "id": "BER",
            "code": "BER",
            "isTemplate": False,
            "name": "Spree Lofts Berlin",
            "description": "Serviced apartments on the river Spree in Friedrichshain.",
            "companyName": "Spree Lofts GmbH",
            "managingDirectors": "Anna Becker",
            "commercialRegisterEntry": "Amtsgericht Charlottenburg HRB 123456",
            "taxId": "DE123456789",
            "location": {
                "addressLine1": "Stralauer Allee 12",
                "postalCode": "10245",
                "city": "Berlin",
                "countryCode": "DE",
            },
            "bankAccount": {"iban": "DE02100100109307118603", "bic": "PBNKDEFF", "bank": "Bank"},
            "paymentTerms": {"en": "Payable on arrival."},
            "timeZone": "Europe/Berlin",
            "currencyCode": "EUR",
            "created": "2021-04-01T10:00:00+02:00",
            "status": "Live",
            "isArchived": False,
        }
        archived = {
            **copy.deepcopy(live),
            "id": "OLD",
            "code": "OLD",
            "name": "Old Mill Potsdam",
            "isArchived": True,
            "location": {"addressLine1": "Mühlenweg 3", "city": "Potsdam", "countryCode": "DE"},
        }
        return {"BER": live, "OLD": archived}

    def _unit_groups(self) -> dict[str, dict[str, Any]]:
        prop = {"id": "BER", "code": "BER", "name": "Spree Lofts Berlin"}
        return {
            "BER-STU": {
                "id": "BER-STU",
                "code": "STU",
                "name": "Studio",
                "description": "Studio with a queen bed and kitchenette",
                "memberCount": 3,
                "maxPersons": 2,
                "rank": 1,
                "type": "BedRoom",
                "property": prop,
                "nightly": Decimal("120"),
            },
            "BER-LOFT": {
                "id": "BER-LOFT",
                "code": "LOFT",
                "name": "River Loft",
                "description": "Two-bedroom loft with a river view",
                "memberCount": 1,
                "maxPersons": 4,
                "rank": 2,
                "type": "BedRoom",
                "property": prop,
                "nightly": Decimal("210"),
            },
        }

    def _services(self) -> dict[str, dict[str, Any]]:
        return {
            "BER-ECI": {
                "id": "BER-ECI",
                "code": "ECI",
                "name": "Early check-in",
                "description": "Check in from 11:00",
                "pricingUnit": "Room",
                "defaultGrossPrice": _money(Decimal("30")),
                "when": "arrival",
            },
            "BER-LCO": {
                "id": "BER-LCO",
                "code": "LCO",
                "name": "Late check-out",
                "description": "Check out until 14:00",
                "pricingUnit": "Room",
                "defaultGrossPrice": _money(Decimal("25")),
                "when": "departure",
            },
            "BER-BRKF": {
                "id": "BER-BRKF",
                "code": "BRKF",
                "name": "Breakfast basket",
                "description": "Fresh rolls, jam and coffee delivered at 8:00",
                "pricingUnit": "Person",
                "defaultGrossPrice": _money(Decimal("18")),
                "when": "nightly",
            },
        }

    def _reservation(
        self,
        rid: str,
        *,
        status: str,
        group: str,
        start: int,
        nights: int,
        first: str,
        last: str,
        adults: int = 2,
        children: tuple[int, ...] = (),
        external: str | None = None,
        email: str = "guest@example.org",
        phone: str = "+49 30 5550 1234",
    ) -> dict[str, Any]:
        arrival = self.today + timedelta(days=start)
        departure = arrival + timedelta(days=nights)
        gross = self.unit_groups[group]["nightly"] * nights
        payload: dict[str, Any] = {
            "id": rid,
            "bookingId": rid.split("-")[0],
            "status": status,
            "property": {"id": "BER", "code": "BER", "name": "Spree Lofts Berlin"},
            "ratePlan": {"id": f"BER-FLEX-{group[4:]}", "code": "FLEX", "name": "Flexible"},
            "unitGroup": {
                "id": group,
                "code": group[4:],
                "name": self.unit_groups[group]["name"],
                "type": "BedRoom",
            },
            "totalGrossAmount": _money(gross),
            "arrival": _iso(arrival, "15:00:00"),
            "departure": _iso(departure, "11:00:00"),
            "created": "2025-01-05T09:12:44+01:00",
            "modified": "2025-01-05T09:12:44+01:00",
            "adults": adults,
            "childrenAges": list(children),
            "channelCode": "Direct",
            "source": "Website",
            "primaryGuest": {
                "title": "Mx",
                "firstName": first,
                "lastName": last,
                "email": email,
                "phone": phone,
                "address": {
                    "addressLine1": "Kastanienallee 1",
                    "postalCode": "10435",
                    "city": "Berlin",
                    "countryCode": "DE",
                },
            },
            "paymentAccount": {
                "accountNumber": "411111******1111",
                "accountHolder": f"{first} {last}",
                "expiryMonth": "12",
                "expiryYear": "2027",
                "paymentMethod": "visa",
                "payerEmail": email,
                "isVirtual": False,
            },
            "guaranteeType": "CreditCard",
            "balance": _money(-gross),
            "services": [],
            "comment": "",
        }
        if external:
            payload["externalCode"] = external
        return payload

    def _reservations(self) -> dict[str, dict[str, Any]]:
        # id, status, unit group, arrival (days from today), nights, first and last name
        plain = [
            ("QHWTXNBV-2", "Confirmed", "BER-STU", 3, 3, "Lars", "Berg"),
            ("WERTZUIO-1", "Confirmed", "BER-LOFT", 8, 2, "Jan", "Nowak"),
            ("KLMNOPQR-1", "InHouse", "BER-STU", -2, 4, "Greta", "Schmidt"),
            ("ZXCVBNMA-1", "CheckedOut", "BER-STU", -20, 3, "Paul", "Weiß"),
            ("ASDFGHJK-1", "Canceled", "BER-LOFT", 12, 2, "Eva", "Kowalczyk"),
        ]
        rows = [
            self._reservation(
                "QHWTXNBV-1",
                status="Confirmed",
                group="BER-LOFT",
                start=3,
                nights=3,
                first="Zoë",
                last="Ødegård",
                children=(5,),
                external="BDC-4455667788",
                email="zoe.odegard@example.no",
                phone="+47 912 55 501",
            ),
            *(
                self._reservation(
                    rid, status=status, group=group, start=start, nights=n, first=f, last=last
                )
                for rid, status, group, start, n, f, last in plain
            ),
        ]
        return {row["id"]: row for row in rows}

    # -- faults ----------------------------------------------------------------------------------

    def fail(self, path: str, *faults: Fault) -> None:
        """Answer the next requests whose path starts with `path` with these faults."""
        self._faults.setdefault(path, deque()).extend(faults)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def calls(self, method: str, path_prefix: str) -> list[Logged]:
        return [c for c in self.log if c.method == method and c.path.startswith(path_prefix)]

    # -- server ----------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/connect/token", self._token)
        app.router.add_get("/inventory/v1/properties", self._list_properties)
        app.router.add_get("/inventory/v1/properties/{id}", self._get_property)
        app.router.add_get("/inventory/v1/unit-groups", self._list_unit_groups)
        app.router.add_get("/settings/v1/properties/{id}/time-slice-definitions", self._time_slices)
        app.router.add_get("/booking/v1/reservations", self._list_reservations)
        app.router.add_get("/booking/v1/reservations/{id}", self._get_reservation)
        app.router.add_patch("/booking/v1/reservations/{id}", self._patch_reservation)
        app.router.add_get("/booking/v1/reservations/{id}/service-offers", self._service_offers)
        app.router.add_put("/booking/v1/reservation-actions/{id}/book-service", self._book_service)
        app.router.add_get("/availability/v1/unit-groups", self._availability)
        app.router.add_get("/booking/v1/offers", self._offers)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = raw.decode()
        self.log.append(
            Logged(
                request.method,
                request.path,
                dict(request.query),
                body,
                dict(request.headers),
            )
        )
        for prefix, queue in self._faults.items():
            if (
                request.path.startswith(prefix)
                and queue
                and queue[0].method in (None, request.method)
            ):
                fault = queue.popleft()
                return web.json_response(
                    {"messages": [f"injected {fault.status}"]},
                    status=fault.status,
                    headers=fault.headers,
                )
        if request.path != "/connect/token":
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
                return web.json_response({"messages": ["Unauthorized"]}, status=401)
        return await handler(request)

    # -- identity --------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=400)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"tok-{next(self._token_ids)}"
        self.valid_tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.token_ttl_s, "token_type": "Bearer"}
        )

    # -- inventory and settings ------------------------------------------------------------------

    @staticmethod
    def _page(request: web.Request, items: list[Any], key: str) -> web.Response:
        number = int(request.query.get("pageNumber", "1"))
        size = int(request.query.get("pageSize", "0"))
        page = items if size <= 0 else items[(number - 1) * size : number * size]
        if not page:
            return web.Response(status=204)
        return web.json_response({key: page, "count": len(items)})

    async def _list_properties(self, request: web.Request) -> web.Response:
        return self._page(request, list(self.properties.values()), "properties")

    async def _get_property(self, request: web.Request) -> web.Response:
        prop = self.properties.get(request.match_info["id"])
        if prop is None:
            return web.json_response({"messages": ["Not found"]}, status=404)
        return web.json_response(prop)

    def _public_group(self, group: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in group.items() if k != "nightly"}

    async def _list_unit_groups(self, request: web.Request) -> web.Response:
        groups = [
            self._public_group(g)
            for g in self.unit_groups.values()
            if g["property"]["id"] == request.query.get("propertyId", "BER")
        ]
        return self._page(request, groups, "unitGroups")

    async def _time_slices(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.properties:
            return web.json_response({"messages": ["Not found"]}, status=404)
        definition = {
            "id": f"{request.match_info['id']}-NIGHT",
            "name": "Over night",
            "template": "OverNight",
            "checkInTime": "15:00:00",
            "checkOutTime": "11:00:00",
        }
        return web.json_response({"timeSliceDefinitions": [definition], "count": 1})

    # -- reservations ----------------------------------------------------------------------------

    async def _list_reservations(self, request: web.Request) -> web.Response:
        query = request.query
        rows = list(self.reservations.values())
        if "externalCode" in query:
            rows = [r for r in rows if r.get("externalCode") == query["externalCode"]]
        if "bookingId" in query:
            rows = [r for r in rows if r["bookingId"] == query["bookingId"]]
        if "propertyIds" in query:
            wanted = set(query["propertyIds"].split(","))
            rows = [r for r in rows if r["property"]["id"] in wanted]
        if "textSearch" in query:
            needle = query["textSearch"].casefold()
            rows = [
                r
                for r in rows
                if needle in r["id"].casefold()
                or needle in str(r.get("externalCode", "")).casefold()
                or needle in r["primaryGuest"]["lastName"].casefold()
                or needle in r["primaryGuest"]["firstName"].casefold()
            ]
        if query.get("dateFilter") == "Stay":
            start = date.fromisoformat(query["from"][:10])
            end = date.fromisoformat(query["to"][:10])
            rows = [
                r
                for r in rows
                if date.fromisoformat(r["arrival"][:10]) <= end
                and date.fromisoformat(r["departure"][:10]) >= start
            ]
        return self._page(request, [copy.deepcopy(r) for r in rows], "reservations")

    async def _get_reservation(self, request: web.Request) -> web.Response:
        row = self.reservations.get(request.match_info["id"])
        if row is None:
            return web.json_response({"messages": ["Reservation not found"]}, status=404)
        return web.json_response(copy.deepcopy(row))

    async def _patch_reservation(self, request: web.Request) -> web.Response:
        row = self.reservations.get(request.match_info["id"])
        if row is None:
            return web.json_response({"messages": ["Reservation not found"]}, status=404)
        for op in await request.json():
            if op["op"] in ("add", "replace") and op["path"] == "/comment":
                row["comment"] = op["value"]
            else:
                return web.json_response({"messages": ["Unsupported patch"]}, status=422)
        return web.Response(status=204)

    def _service_dates(self, row: dict[str, Any], service: dict[str, Any]) -> list[date]:
        arrival = date.fromisoformat(row["arrival"][:10])
        departure = date.fromisoformat(row["departure"][:10])
        if service["when"] == "arrival":
            return [arrival]
        if service["when"] == "departure":
            return [departure - timedelta(days=1)]
        return [arrival + timedelta(days=i) for i in range((departure - arrival).days)]

    async def _service_offers(self, request: web.Request) -> web.Response:
        row = self.reservations.get(request.match_info["id"])
        if row is None:
            return web.json_response({"messages": ["Reservation not found"]}, status=404)
        if date.fromisoformat(row["departure"][:10]) < self.today:
            return web.json_response(
                {"messages": ["Services cannot be booked for a reservation in the past."]},
                status=422,
            )
        persons = row["adults"] + len(row["childrenAges"])
        offers = []
        for service in self.services.values():
            count = persons if service["pricingUnit"] == "Person" else 1
            unit = Decimal(str(service["defaultGrossPrice"]["amount"]))
            dates = self._service_dates(row, service)
            total = unit * count * len(dates)
            offers.append(
                {
                    "service": {k: v for k, v in service.items() if k not in ("when",)},
                    "count": count,
                    "totalAmount": {
                        "grossAmount": float(total),
                        "netAmount": float((total / Decimal("1.19")).quantize(_CENT)),
                        "vatType": "Normal",
                        "vatPercent": 19.0,
                        "currency": "EUR",
                    },
                    "dates": [
                        {
                            "serviceDate": d.isoformat(),
                            "count": count,
                            "amount": {
                                "grossAmount": float(unit * count),
                                "netAmount": float(
                                    (unit * count / Decimal("1.19")).quantize(_CENT)
                                ),
                                "vatType": "Normal",
                                "vatPercent": 19.0,
                                "currency": "EUR",
                            },
                            "isDefaultDate": True,
                            "isMandatory": False,
                        }
                        for d in dates
                    ],
                }
            )
        return web.json_response({"services": offers})

    async def _book_service(self, request: web.Request) -> web.Response:
        row = self.reservations.get(request.match_info["id"])
        if row is None:
            return web.json_response({"messages": ["Reservation not found"]}, status=404)
        body = await request.json()
        service = self.services.get(body.get("serviceId", ""))
        if service is None or not body.get("dates"):
            return web.json_response({"messages": ["Invalid service"]}, status=422)
        row["services"] = [s for s in row["services"] if s["service"]["id"] != service["id"]]
        row["services"].append(
            {
                "service": {k: v for k, v in service.items() if k != "when"},
                "dates": body["dates"],
            }
        )
        return web.Response(status=204)

    # -- availability and offers -----------------------------------------------------------------

    def _sold(self, group: str, night: date) -> int:
        return sum(
            1
            for r in self.reservations.values()
            if r["unitGroup"]["id"] == group
            and r["status"] not in ("Canceled", "NoShow")
            and date.fromisoformat(r["arrival"][:10])
            <= night
            < date.fromisoformat(r["departure"][:10])
        )

    async def _availability(self, request: web.Request) -> web.Response:
        query = request.query
        start = date.fromisoformat(query["from"])
        end = date.fromisoformat(query["to"])
        wanted = set(query["unitGroupIds"].split(",")) if "unitGroupIds" in query else None
        slices = []
        night = start
        while night <= end:
            groups = []
            for group in self.unit_groups.values():
                if wanted is not None and group["id"] not in wanted:
                    continue
                sold = self._sold(group["id"], night)
                groups.append(
                    {
                        "unitGroup": {
                            "id": group["id"],
                            "code": group["code"],
                            "name": group["name"],
                            "type": group["type"],
                        },
                        "physicalCount": group["memberCount"],
                        "houseCount": group["memberCount"],
                        "soldCount": sold,
                        "occupancy": round(100 * sold / group["memberCount"], 2),
                        "availableCount": group["memberCount"] - sold,
                        "sellableCount": group["memberCount"] - sold,
                        "allowedOverbookingCount": 0,
                        "maintenance": {"outOfService": 0, "outOfOrder": 0, "outOfInventory": 0},
                        "block": {"definite": 0, "tentative": 0, "picked": 0, "remaining": 0},
                    }
                )
            slices.append(
                {
                    "from": _iso(night, "15:00:00"),
                    "to": _iso(night + timedelta(days=1), "11:00:00"),
                    "property": {"soldCount": 0, "occupancy": 0.0},
                    "unitGroups": groups,
                }
            )
            night += timedelta(days=1)
        return web.json_response({"timeSlices": slices, "count": len(slices)})

    async def _offers(self, request: web.Request) -> web.Response:
        query = request.query
        arrival = date.fromisoformat(query["arrival"])
        departure = date.fromisoformat(query["departure"])
        persons = int(query.get("adults", "1"))
        wanted = set(query["unitGroupIds"].split(",")) if "unitGroupIds" in query else None
        nights = [arrival + timedelta(days=i) for i in range((departure - arrival).days)]
        offers = []
        for group in self.unit_groups.values():
            if (wanted is not None and group["id"] not in wanted) or group["maxPersons"] < persons:
                continue
            available = min(group["memberCount"] - self._sold(group["id"], n) for n in nights)
            if available <= 0:
                continue
            slices = []
            gross = Decimal(0)
            for night in nights:
                price = group["nightly"] + (Decimal("20") if night.weekday() in (4, 5) else 0)
                gross += price
                net = (price / (1 + _VAT / 100)).quantize(_CENT)
                slices.append(
                    {
                        "from": _iso(night, "15:00:00"),
                        "to": _iso(night + timedelta(days=1), "11:00:00"),
                        "availableUnits": available,
                        "baseAmount": {
                            "grossAmount": float(price),
                            "netAmount": float(net),
                            "vatType": "Reduced",
                            "vatPercent": float(_VAT),
                            "currency": "EUR",
                        },
                        "totalGrossAmount": _money(price),
                    }
                )
            net_total = (gross / (1 + _VAT / 100)).quantize(_CENT)
            city_tax = (net_total * _CITY_TAX / 100).quantize(_CENT)
            offers.append(
                {
                    "arrival": _iso(arrival, "15:00:00"),
                    "departure": _iso(departure, "11:00:00"),
                    "unitGroup": {
                        "id": group["id"],
                        "code": group["code"],
                        "name": group["name"],
                        "description": group["description"],
                        "type": group["type"],
                    },
                    "ratePlan": {
                        "id": f"BER-FLEX-{group['code']}",
                        "code": "FLEX",
                        "name": "Flexible",
                        "isSubjectToCityTax": True,
                    },
                    "minGuaranteeType": "CreditCard",
                    "availableUnits": available,
                    "totalGrossAmount": _money(gross),
                    "cancellationFee": {
                        "id": "BER-FLE",
                        "code": "FLE",
                        "name": "Flexible",
                        "description": "Free cancellation until 1 day before arrival",
                        "dueDateTime": _iso(arrival - timedelta(days=1), "15:00:00"),
                        "fee": _money(Decimal(0)),
                    },
                    "noShowFee": {"id": "BER-NS", "code": "NS", "fee": _money(group["nightly"])},
                    "timeSlices": slices,
                    "services": [],
                    "fees": [],
                    "taxDetails": [
                        {
                            "vatType": "Reduced",
                            "vatPercent": float(_VAT),
                            "net": _money(net_total),
                            "tax": _money(gross - net_total),
                        }
                    ],
                    "cityTaxes": [
                        {
                            "id": "BER-CITYTAX",
                            "code": "CITYTAX",
                            "name": "Berlin city tax",
                            "totalGrossAmount": _money(city_tax),
                            "dates": [],
                        }
                    ],
                    "isCorporate": False,
                    "prePaymentAmount": _money(Decimal(0)),
                }
            )
        return web.json_response(
            {
                "property": {"id": "BER", "code": "BER", "name": "Spree Lofts Berlin"},
                "offers": offers,
            }
        )
