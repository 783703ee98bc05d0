"""Engineering units as OPC UA ``EUInformation`` (OPC 10000-8, 5.6.3, UNECE Rec. 20 codes).

A process value's ``unit`` in the plant model is the everyday symbol (``degC``, ``g``);
OPC UA clients expect the UNECE common code packed into ``UnitId`` under the namespace
``http://www.opcfoundation.org/UA/units/un/cefact``. Symbols without a UNECE code keep
``UnitId`` -1 (OPC 10000-8: "-1 if not available") and still show their display name.
"""

from __future__ import annotations

from typing import Any

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

# symbol in the plant model -> (UNECE common code, display name, description)
_UNECE: dict[str, tuple[str, str, str]] = {
    "g": ("GRM", "g", "gram"),
    "mg": ("MGM", "mg", "milligram"),
    "kg": ("KGM", "kg", "kilogram"),
    "degC": ("CEL", "°C", "degree Celsius"),
    "°C": ("CEL", "°C", "degree Celsius"),
    "K": ("KEL", "K", "kelvin"),
    "N": ("NEW", "N", "newton"),
    "kN": ("B47", "kN", "kilonewton"),
    "Nm": ("NU", "N·m", "newton metre"),
    "Ncm": ("", "N·cm", "newton centimetre"),
    "W": ("WTT", "W", "watt"),
    "kW": ("KWT", "kW", "kilowatt"),
    "A": ("AMP", "A", "ampere"),
    "V": ("VLT", "V", "volt"),
    "%": ("P1", "%", "percent"),
    "bar": ("BAR", "bar", "bar"),
    "Pa": ("PAL", "Pa", "pascal"),
    "kPa": ("KPA", "kPa", "kilopascal"),
    "mm": ("MMT", "mm", "millimetre"),
    "m": ("MTR", "m", "metre"),
    "l": ("LTR", "l", "litre"),
    "ml": ("MLT", "ml", "millilitre"),
    "s": ("SEC", "s", "second"),
    "min": ("MIN", "min", "minute"),
    "Hz": ("HTZ", "Hz", "hertz"),
    "rpm": ("RPM", "r/min", "revolutions per minute"),
    "ea": ("C62", "ea", "one (unit)"),
}


def unece_unit_id(code: str) -> int:
    """Pack a UNECE common code into ``UnitId`` as OPC 10000-8, 5.6.3 prescribes."""
    unit_id = 0
    for char in code[:3]:
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def eu_information(symbol: str) -> Any:
    """The ``EUInformation`` for a plant-model unit symbol."""
    from asyncua import ua

    code, display, description = _UNECE.get(symbol, ("", symbol, symbol))
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=ua.Int32(unece_unit_id(code)) if code else ua.Int32(-1),
        DisplayName=ua.LocalizedText(display),
        Description=ua.LocalizedText(description),
    )
