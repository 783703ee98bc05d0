"""B2MML V0701 documents: safe parsing and validation against MESA's XSDs.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International." The schemas ship unchanged in ``mes_core/erp/xsd`` (copied from
``../shared/b2mml``, MESA commit 65cc665; see the README and LICENSE there).

Untrusted XML from an ERP is parsed in two layers:

1. ``defusedxml`` refuses any DTD, entity declaration or external reference before a
   single entity is expanded (billion-laughs bombs, XXE, external DTDs);
2. the accepted bytes are parsed again by lxml with a hardened parser (no entity
   resolution, no network, no DTD loading, no huge trees) and validated against the XSD.

Every refusal is a ``B2MMLError`` whose ``code`` says which check failed and whose message
is one line a person can act on.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from lxml import etree

B2MML_NS = "http://www.mesa.org/xml/B2MML"
XSD_DIR = Path(__file__).with_name("xsd")

#: The largest document accepted (bytes): a day of orders of a big plant fits many times.
MAX_DOCUMENT_BYTES = 5_000_000

SCHEDULE_XSD = "B2MML-OperationsSchedule.xsd"
PERFORMANCE_XSD = "B2MML-OperationsPerformance.xsd"


_FORBIDDEN = {
    "DTDForbidden": "a document type declaration (<!DOCTYPE ...>)",
    "EntitiesForbidden": "an entity declaration (<!ENTITY ...>)",
    "ExternalReferenceForbidden": "an external reference",
    "NotSupportedError": "an XML feature that is not supported",
}


class B2MMLError(ValueError):
    """A B2MML document refused; ``code`` names the check (for API error bodies)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@cache
def schema(name: str) -> etree.XMLSchema:
    """The compiled XSD ``name`` from ``XSD_DIR`` (compiled once per process)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(XSD_DIR / name), parser))


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_untrusted(data: bytes, *, expected_root: str, xsd: str) -> etree._Element:
    """Parse ``data`` safely and validate it; return the root element.

    Raises ``B2MMLError`` with code ``too-large``, ``forbidden-xml`` (DTD, entities,
    external references), ``malformed``, ``wrong-namespace``, ``wrong-document`` or
    ``schema-invalid``.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise B2MMLError(
            "too-large", f"document is {len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES}"
        )
    if not data.strip():
        raise B2MMLError("malformed", "document is empty")
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        found = _FORBIDDEN.get(type(exc).__name__, type(exc).__name__)
        raise B2MMLError(
            "forbidden-xml",
            f"the document contains {found}; DTDs, entity declarations and external "
            "references are refused (protection against XXE and entity expansion bombs)",
        ) from exc
    except DefusedET.ParseError as exc:
        raise B2MMLError("malformed", f"not well-formed XML: {exc}") from exc
    try:
        root = etree.fromstring(data, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise B2MMLError("malformed", f"not well-formed XML: {exc}") from exc
    qname = etree.QName(root)
    if qname.namespace != B2MML_NS:
        raise B2MMLError(
            "wrong-namespace",
            f"root element <{qname.localname}> is in namespace {qname.namespace!r}; "
            f"B2MML V0701 requires {B2MML_NS!r}",
        )
    if qname.localname != expected_root:
        raise B2MMLError("wrong-document", f"expected <{expected_root}>, got <{qname.localname}>")
    validate(root, xsd)
    return root


def validate(root: etree._Element, xsd: str) -> None:
    """Validate ``root`` against ``xsd``; ``B2MMLError('schema-invalid')`` names the first
    error with its line."""
    compiled = schema(xsd)
    if compiled.validate(root):
        return
    first = compiled.error_log[0]
    raise B2MMLError(
        "schema-invalid",
        f"not valid against {xsd} (line {first.line}): "
        + first.message.replace(f"{{{B2MML_NS}}}", ""),
    )
