"""The two wire formats of Open311 GeoReport v2: XML (required by the standard) and JSON
(optional), for the lists, the errors and the service discovery document.

Both are built from the same records (plain dicts from bot/reports/open311.py), so the formats
cannot disagree. XML follows the examples of the specification: a root element per list
(`services`, `service_requests`, `errors`, `discovery`), one child per item, one element per
field; a missing value is an empty element, booleans are `true`/`false`. ElementTree escapes
what citizens typed, so an idea's text cannot break the document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from starlette.responses import JSONResponse, Response

FORMATS = ("xml", "json")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this API last changed in a way clients would notice (discovery `changeset`).
CHANGESET = "2026-12-01T00:00:00Z"
HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}
XML_TYPE = "text/xml; charset=utf-8"
# The child element of each list root, as the specification names them.
ITEMS = {"services": "service", "service_requests": "request", "errors": "error"}


def listing(root: str, items: list[dict[str, Any]], fmt: str, status: int = 200) -> Response:
    """A GeoReport list: JSON array, or `<root><item>…</item></root>`."""
    if fmt == "json":
        return JSONResponse(items, status_code=status, headers=HEADERS)
    element = ET.Element(root)
    for item in items:
        _fields(ET.SubElement(element, ITEMS[root]), item)
    return _xml(element, status)


def error(status: int, description: str, fmt: str) -> Response:
    """GeoReport errors are a list of {code, description} in either format."""
    return listing("errors", [{"code": status, "description": description}], fmt, status)


def discovery(endpoint_url: str, contact: str, fmt: str) -> Response:
    """The service discovery document: where the v2 endpoint is and which formats it speaks."""
    endpoint = {"specification": SPECIFICATION, "url": endpoint_url, "changeset": CHANGESET,
                "type": "production", "formats": ["text/xml", "application/json"]}
    doc = {"changeset": CHANGESET, "contact": contact,
           "key_service": "No key needed: this endpoint is read-only.", "endpoints": [endpoint]}
    if fmt == "json":
        return JSONResponse(doc, headers=HEADERS)
    root = ET.Element("discovery")
    _fields(root, {k: v for k, v in doc.items() if k != "endpoints"})
    item = ET.SubElement(ET.SubElement(root, "endpoints"), "endpoint")
    _fields(item, {k: v for k, v in endpoint.items() if k != "formats"})
    formats = ET.SubElement(item, "formats")
    for name in endpoint["formats"]:
        ET.SubElement(formats, "format").text = name
    return _xml(root, 200)


def _fields(parent: ET.Element, record: dict[str, Any]) -> None:
    for name, value in record.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def _xml(element: ET.Element, status: int) -> Response:
    ET.indent(element)
    body = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type=XML_TYPE, headers=HEADERS)
