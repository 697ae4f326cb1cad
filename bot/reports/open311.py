"""A read-only Open311 GeoReport v2 view of the ideas (the civic-tech standard that tools such
as FixMyStreet read), served by `kominn run`'s HTTP server.

Mapping: a focus area is a *service* (`service_code` = a stable slug of its name); an idea is
a *service request*: `service_request_id` = its ref (KI-n), `status` open (new, useful) or
closed (realised, declined, merged), `status_notes` = our status label and the public note,
`service_name` = focus area, `description`, `requested_datetime` = submitted,
`updated_datetime` = last change, `address` = the place as the citizen wrote it. GeoReport has
no title, so `title` is an extra field (clients ignore fields they do not know).

Every route answers in XML (`.xml`, the format GeoReport v2 requires) and JSON (`.json`);
`/open311/discovery.{xml,json}` is the service discovery document. `jurisdiction_id` is
accepted on every route: KomInn serves one municipality, so any value is fine unless
`KOMINN_OPEN311_JURISDICTION` names it, then another value is a 404 as the standard says.

Hidden ideas (and, under KOMINN_PUBLISH=after-review, ideas not yet published) are absent.

No personal data: nothing about authors or supporters, and no coordinates (a location shared
from a phone may be the citizen's home).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.i18n import translator
from bot.ideas.book import is_public, public_clause
from bot.localtime import parse_moment
from bot.reports import georeport
from bot.runtime import Runtime
from dialogs.lifecycle import CLOSED, OPEN
from dialogs.refs import format_ref, parse_ref
from storage.models import Idea

PREFIX = "/open311/v2"
DISCOVERY = "/open311/discovery"
MAX_REQUESTS = 1000
OPEN_CODES = tuple(s.value for s in OPEN)
CLOSED_CODES = tuple(s.value for s in CLOSED)


def service_code(area: str) -> str:
    """`Natur, kultur, miljø og samfunnssikkerhet` → `natur-kultur-miljo-og-samfunnssikkerhet`:
    ASCII, stable as long as the name is."""
    text = area.casefold().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "annet"


class _BadRequest(ValueError):
    pass


class Open311:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    # --- mapping ------------------------------------------------------------------------------

    def request_record(self, idea: Idea) -> dict[str, Any]:
        t = translator(self.settings.locale)
        label = t(f"status.{idea.status}")
        zone = self.settings.zone
        return {
            "service_request_id": format_ref(idea.id or 0),
            "status": "open" if idea.status in OPEN_CODES else "closed",
            "status_notes": f"{label}: {idea.public_note}" if idea.public_note else label,
            "service_name": idea.focus_area,
            "service_code": service_code(idea.focus_area) if idea.focus_area else None,
            "title": idea.title,
            "description": idea.description,
            "agency_responsible": None,
            "service_notice": None,
            "requested_datetime": _when(idea.created_at, zone),
            "updated_datetime": _when(idea.updated_at, zone),
            "expected_datetime": None,
            "address": idea.place,
            "address_id": None,
            "zipcode": None,
            "media_url": None,
        }

    # --- endpoints (sync: Starlette runs them in its thread pool, off the event loop) --------

    def services(self, request: Request) -> Response:
        fmt = _format(request)
        if (refused := self._jurisdiction(request, fmt)) is not None:
            return refused
        return georeport.listing("services", [{
            "service_code": service_code(area), "service_name": area, "description": area,
            "metadata": False, "type": "realtime", "keywords": "", "group": "",
        } for area in self.settings.focus_areas], fmt)

    def requests(self, request: Request) -> Response:
        fmt = _format(request)
        if (refused := self._jurisdiction(request, fmt)) is not None:
            return refused
        try:
            query = self._filtered(request)
        except _BadRequest as exc:
            return georeport.error(400, str(exc), fmt)
        with Session(self.runtime.db) as session:
            ideas = session.exec(query).all()
            return georeport.listing("service_requests",
                                     [self.request_record(idea) for idea in ideas], fmt)

    def one(self, request: Request) -> Response:
        fmt = _format(request)
        if (refused := self._jurisdiction(request, fmt)) is not None:
            return refused
        raw = request.path_params["ref"]
        number = parse_ref(raw)
        with Session(self.runtime.db) as session:
            idea = session.get(Idea, number) if number is not None else None
            if idea is None or not is_public(idea, self.settings.publish):
                return georeport.error(404, f"no service request {raw}", fmt)
            return georeport.listing("service_requests", [self.request_record(idea)], fmt)

    def discovery(self, request: Request) -> Response:
        """Where the v2 endpoint is, as the client reached us (behind a proxy: the forwarded
        scheme and host, which uvicorn applies for trusted proxies)."""
        url = str(request.base_url).rstrip("/") + PREFIX
        return georeport.discovery(url, self.settings.open311_contact, _format(request))

    def _jurisdiction(self, request: Request, fmt: str) -> Response | None:
        wanted = request.query_params.get("jurisdiction_id", "").strip()
        ours = self.settings.open311_jurisdiction
        if wanted and ours and wanted.casefold() != ours.casefold():
            return georeport.error(404, f"jurisdiction_id {wanted} not found", fmt)
        return None

    # --- filters ------------------------------------------------------------------------------

    def _filtered(self, request: Request) -> Any:
        params = request.query_params
        query = select(Idea).where(public_clause(self.settings.publish))
        statuses = _statuses(params.get("status", ""))
        if statuses is not None:
            query = query.where(col(Idea.status).in_(statuses))
        if params.get("start_date"):
            query = query.where(Idea.created_at >= self._date(params["start_date"], "start_date"))
        if params.get("end_date"):
            query = query.where(Idea.created_at <= self._date(params["end_date"], "end_date"))
        if params.get("service_code"):
            query = query.where(self._areas(params["service_code"]))
        if params.get("service_request_id"):
            numbers = [parse_ref(part) for part in params["service_request_id"].split(",")]
            query = query.where(col(Idea.id).in_([n for n in numbers if n]))
        return query.order_by(col(Idea.created_at).desc(),
                              col(Idea.id).desc()).limit(MAX_REQUESTS)

    def _date(self, value: str, name: str) -> datetime:
        try:
            return parse_moment(value.strip().replace(" ", "+"), self.settings.zone)
        except ValueError:
            raise _BadRequest(f"{name} must be a W3C date-time, e.g. 2024-05-01T00:00:00Z") \
                from None

    def _areas(self, codes: str) -> Any:
        """Ideas whose focus area has one of the codes (configured areas, and any older area
        name still found on ideas)."""
        wanted = {code.strip().casefold() for code in codes.split(",") if code.strip()}
        with Session(self.runtime.db) as session:
            stored = session.exec(select(Idea.focus_area).distinct()).all()
        names = {a for a in [*self.settings.focus_areas, *stored]
                 if a and service_code(a) in wanted}
        return col(Idea.focus_area).in_(sorted(names))


def _statuses(value: str) -> tuple[str, ...] | None:
    parts = {p.strip().casefold() for p in value.split(",") if p.strip()}
    if not parts:
        return None
    unknown = parts - {"open", "closed"}
    if unknown:
        raise _BadRequest("status must be open, closed or open,closed")
    return (OPEN_CODES if "open" in parts else ()) + (CLOSED_CODES if "closed" in parts else ())


def _when(value: datetime, zone: Any) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds")


def _format(request: Request) -> str:
    """`xml` or `json`: every route of `routes()` ends in one of them."""
    return request.url.path.rsplit(".", 1)[-1]


def routes(runtime: Runtime) -> list[Route]:
    """The Open311 routes for the shared Starlette app, each in XML and JSON."""
    api = Open311(runtime)
    table = [
        (f"{PREFIX}/services", api.services),
        (f"{PREFIX}/requests", api.requests),
        (PREFIX + "/requests/{ref}", api.one),
        (DISCOVERY, api.discovery),
    ]
    return [Route(f"{path}.{fmt}", endpoint, methods=["GET"])
            for path, endpoint in table for fmt in georeport.FORMATS]
