"""From OPC UA tags to MES plant events: the pure rules (no I/O), after PackML and ISA-95.

The information model a server follows (PRODUCT.md, "OPC UA information model of the
twin"): each work unit an instance of ``WorkUnitType`` with ``State`` (PackML state number,
ISA-TR88.00.02), ``StopReason``, ``UnitMode``, the cumulative PackML admin counters
``ProdProcessedCount`` / ``ProdDefectiveCount``, ``JobOrderID``, ``MaterialLotID`` and
process values. This module turns changes of those tags into
``mes_core.schemas.plant_events`` (ISA-95 Part 3, 6.6 production data collection).

**State.** PackML states are coarser than the MES's (ISO 22400-2 time model) states:
Suspended covers both starved and blocked, Held both a breakdown and a changeover. A
``StopReason`` that starts with the MES word (``"starved: upstream empty"``) decides; without
one the PackML default below applies, which is what a plain PLC gives.

**Counts.** The counters are cumulative, so a missed notification or a reconnect never
loses a unit: the collector keeps the last value it turned into events and emits the
difference. ``good`` = processed - defective. The two counters are separate tags and may
arrive in either order; cumulative good (processed - defective) can then dip for a moment
(defective seen before processed). The tracker only ever moves its good baseline up, so the
dip emits nothing and the total emitted equals the final processed - defective exactly.
A counter that goes *down* (a PLC reset it) starts a new baseline and is logged by the
caller; nothing negative is ever emitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from mes_core.schemas.plant_events import EquipmentState

# Browse names of the information model (the contract with any server that follows it).
WORK_UNIT_TYPE = "WorkUnitType"
ALARM_EVENT_TYPE = "WorkUnitAlarmEventType"
PROCESS_VALUES = "ProcessValues"
NAMESPACE_URI = "urn:mestwin:twin"

STATE = "State"
STATE_NAME = "StateName"
UNIT_MODE = "UnitMode"
STOP_REASON = "StopReason"
PROCESSED = "ProdProcessedCount"
DEFECTIVE = "ProdDefectiveCount"
CONSUMED = "ProdConsumedCount"
CUR_MACH_SPEED = "CurMachSpeed"
MACH_SPEED = "MachSpeed"
JOB_ORDER = "JobOrderID"
MATERIAL_LOT = "MaterialLotID"
PRODUCT = "ProductID"

STATE_TAGS = (STATE, STOP_REASON, UNIT_MODE)
COUNTER_TAGS = (PROCESSED, DEFECTIVE)
JOB_TAGS = (JOB_ORDER, MATERIAL_LOT, PRODUCT)
SUBSCRIBED_TAGS = (*STATE_TAGS, *COUNTER_TAGS, *JOB_TAGS)
"""Tags the connector subscribes to (besides process values)."""

# PackML state numbers (ISA-TR88.00.02, 6.1).
EXECUTE = 6
_PACKML_DEFAULT: dict[int, EquipmentState] = {
    0: EquipmentState.OFFLINE,  # Undefined
    1: EquipmentState.DOWN,  # Clearing (after an abort)
    2: EquipmentState.OFFLINE,  # Stopped
    3: EquipmentState.IDLE,  # Starting
    4: EquipmentState.IDLE,  # Idle
    5: EquipmentState.STARVED,  # Suspended: an external condition (upstream/downstream)
    6: EquipmentState.RUNNING,  # Execute
    7: EquipmentState.OFFLINE,  # Stopping
    8: EquipmentState.DOWN,  # Aborting
    9: EquipmentState.DOWN,  # Aborted
    10: EquipmentState.DOWN,  # Holding: an internal condition (breakdown)
    11: EquipmentState.DOWN,  # Held
    12: EquipmentState.DOWN,  # Unholding
    13: EquipmentState.STARVED,  # Suspending
    14: EquipmentState.STARVED,  # Unsuspending
    15: EquipmentState.IDLE,  # Resetting
    16: EquipmentState.RUNNING,  # Completing
    17: EquipmentState.IDLE,  # Complete
}
_WORDS = {s.value: s for s in EquipmentState}

MAX_REASON = 200


def mes_state(packml_state: int, reason: str, unit_mode: str) -> EquipmentState:
    """The MES work unit state for a PackML state, its ``StopReason`` and ``UnitMode``.

    Execute is always running; otherwise a reason that starts with an MES state word
    (``"blocked: downstream full"``) names the state; otherwise the PackML default; a
    unit in Maintenance mode that is not executing is in maintenance.
    """
    if packml_state == EXECUTE:
        return EquipmentState.RUNNING
    word = reason.split(":", 1)[0].strip().lower()
    if word in _WORDS:
        return _WORDS[word]
    if unit_mode.strip().lower() == "maintenance":
        return EquipmentState.MAINTENANCE
    return _PACKML_DEFAULT.get(packml_state, EquipmentState.OFFLINE)


@dataclass
class CounterTracker:
    """Turns cumulative processed/defective counters into good/scrap deltas (see module doc).

    ``processed`` / ``defective`` are the last values seen; ``good_sent`` / ``scrap_sent``
    the cumulative amounts already turned into events. Persist all four (the spool does),
    so a restarted collector neither loses nor doubles a unit.
    """

    processed: int | None = None
    defective: int | None = None
    good_sent: int = 0
    scrap_sent: int = 0

    def observe(self, tag: str, value: int) -> bool:
        """Record a counter value; True when it went backwards (a counter reset)."""
        reset = False
        if tag == PROCESSED:
            if self.processed is not None and value < self.processed:
                reset = True
            self.processed = value
        else:
            if self.defective is not None and value < self.defective:
                reset = True
            self.defective = value
        if reset:
            # A reset PLC counter: start again from zero, keep what was sent.
            self.good_sent = 0
            self.scrap_sent = 0
            self.processed = value if tag == PROCESSED else 0
            self.defective = value if tag == DEFECTIVE else 0
        return reset

    def take(self) -> tuple[int, int]:
        """The (good, scrap) not yet sent; marks them sent. Never negative."""
        processed = self.processed or 0
        defective = self.defective or 0
        scrap = max(0, defective - self.scrap_sent)
        self.scrap_sent += scrap
        good_total = processed - defective
        good = max(0, good_total - self.good_sent)
        self.good_sent += good
        return good, scrap

    def to_json(self) -> dict[str, int | None]:
        return {
            "processed": self.processed,
            "defective": self.defective,
            "good_sent": self.good_sent,
            "scrap_sent": self.scrap_sent,
        }

    @classmethod
    def from_json(cls, data: dict[str, int | None]) -> CounterTracker:
        return cls(
            processed=data.get("processed"),
            defective=data.get("defective"),
            good_sent=int(data.get("good_sent") or 0),
            scrap_sent=int(data.get("scrap_sent") or 0),
        )
