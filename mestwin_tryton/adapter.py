"""``TrytonSut``: Tryton 8.2 as the system under test, driven through JSON-RPC only.

ISA-95 job order -> ``production`` (reference = order id) with its routing's works:

- ERP sends an order: a production of the product's BOM and routing, set to ``waiting``
  (Tryton then creates one ``production.work`` per routing step).
- The supervisor dispatches: each work gets the work center of the named work unit
  (Tryton checks the work center's category against the operation's: rule 4's class).
- An operator starts an operation: the work's work center is the work unit's, and a
  ``production.work.cycle`` runs for the operator (``run_by`` = the employee, through
  ``context.employee``). The production itself stays ``waiting``: Tryton takes inputs
  only until a production runs, and consumes them all when it does.
- An operator completes it: the cycle is done with its plant-time duration, and the
  operator's labour is a ``timesheet.line`` on the work's timesheet work; the last
  operation assigns the inputs (Tryton checks the stock of each lot), runs the production
  (the inputs are consumed), gives the output lot to the finished goods and does it.
- Lots scanned for consumption are input moves of the production with that lot, from
  storage to the production location.
- Counts come from the plant over OPC UA (``collector``): the good units at the order's last
  work unit are its output move of finished goods into storage, the units scrapped at any of
  its work units an output move to the lost-and-found location (Tryton's place for waste),
  both kept at the plant's figures while the order runs. Sampled process values become
  ``quality.inspection`` records of the product's control for that characteristic; one
  out of tolerance fails, Tryton opens a ``quality.alert`` and refuses to finish the
  production until QA resolves the alert.

What Tryton cannot express is said so (``not_checkable``), never passed: per work unit
counts and state seconds (a work cycle has a duration and a cost, no quantity; Tryton
has no equipment state), lot expiry and status, operator certification, work unit
calibration and qualification, electronic signatures, KPIs. The adapter has no method for
what Tryton cannot do (calibration dates, lot status, KPIs), so the runner's capability
check reports those as not checked; where Tryton accepts an action it cannot judge (an
expired lot, an uncertified operator) the answer says why it could not refuse.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from typing import Any

from mestwin_tryton.booking import TrytonBooking
from mestwin_tryton.collector import OpcUaCollector
from mestwin_tryton.masterdata import MasterData, load_plant
from mestwin_tryton.rpc import (
    TrytonError,
    TrytonRpc,
    TrytonUnavailable,
    TrytonUserError,
    TrytonWarning,
)
from plant_models.schema import PlantModel
from twin.scenario.reconcile import LabourHours, OrderRecord, Records
from twin.scenario.sut import (
    Answer,
    IngestStats,
    OperationView,
    OrderRequest,
    OrderView,
    Refusal,
    SutUnavailable,
)

NOT_CHECKABLE: dict[str, str] = {
    "work_unit_counts": (
        "Tryton's production.work.cycle has a duration and a cost but no quantity: good and "
        "scrap per work unit have no place in Tryton (only the order's output moves do)"
    ),
    "state_seconds": "Tryton has no equipment states (work centers carry no state history)",
    "expired_lot": (
        "stock.lot has no expiry date without the stock_lot_sled module (not in the tested "
        "module set): the lot cannot be described as expired"
    ),
    "uncertified_operator": (
        "company.employee has no skills or certifications: Tryton cannot know that the "
        "operator is not certified"
    ),
    "out_of_calibration": "work centers have no calibration or qualification dates",
    "signature": "Tryton has no electronic signatures (a user resolves an alert)",
    "kpis": "Tryton computes no ISO 22400-2 KPIs",
    "state_history": (
        "the tested modules keep no history of a production's or lot's states (only the "
        "current state): the adapter offers no state_history, state_at is not checked"
    ),
}
"""What Tryton 8.2 (with the tested modules) cannot express, with the reason."""

STATES = {
    "request": "planned",
    "draft": "planned",
    "waiting": "released",
    "assigned": "dispatched",
    "running": "running",
    "done": "completed",
    "cancelled": "aborted",
}


def _rule(exc: TrytonError) -> str:
    text = exc.message.lower()
    if "domain" in text or "is not valid according" in text:
        return "TRYTON_DOMAIN"
    if "inspection" in text:
        return "TRYTON_QUALITY"
    if "access" in text or "readonly" in text or "read-only" in text:
        return "TRYTON_ACCESS"
    return "TRYTON_USER_ERROR"


class TrytonSut(TrytonBooking):
    """The scenario runner's seam (``SystemUnderTest``) over a Tryton database."""

    adapter = "tryton"

    def __init__(self, url: str, database: str, *, plant_start: dt.datetime) -> None:
        self.url = url
        self.database = database
        self.plant_start = plant_start
        # Tryton judges dates by its own calendar: plant days are shifted to today.
        self.day_shift = dt.date.today() - plant_start.date()
        self.rpc = TrytonRpc(url, database)
        self._collector_rpc: TrytonRpc | None = None
        self.md = MasterData()
        self.plant: PlantModel | None = None
        self.productions: dict[str, int] = {}
        self.order_product: dict[str, str] = {}
        self.last_work_unit: dict[str, str] = {}
        """plant product -> the work unit class of its last segment's (counted as output)"""
        self.starts: dict[tuple[str, str], tuple[float, str]] = {}
        self.refused: list[Refusal] = []
        self.collector: OpcUaCollector | None = None
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        """order -> [good at its last work unit, scrap at all of them], as booked"""
        self._order_wu: dict[str, str] = {}
        self._lock = threading.Lock()
        self.unbooked: list[str] = []

    # -- identity ------------------------------------------------------------------------

    def describe(self) -> str:
        return f"Tryton at {self.url}/{self.database}/rpc/ (adapter mestwin_tryton)"

    def version(self) -> str:
        return f"trytond {self._call(self.rpc.server_version)}"

    def wait_ready(self, timeout: float) -> None:
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc.server_version()
                return
            except TrytonUnavailable as exc:
                if time.monotonic() > deadline:
                    raise SutUnavailable(str(exc)) from exc
                time.sleep(0.2)

    def not_checkable(self) -> dict[str, str]:
        """What this MES cannot express (capability -> reason): the runner reports each as
        ``not_checked`` instead of judging it."""
        return dict(NOT_CHECKABLE)

    # -- helpers -------------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrytonUnavailable as exc:
            raise SutUnavailable(str(exc)) from exc

    def _date(self, at: float) -> dt.date:
        return (self.plant_start + dt.timedelta(seconds=at)).date() + self.day_shift

    def _answer(self, what: str, action: Any) -> Answer:
        """Run ``action``; a Tryton refusal is an Answer (and kept as the audit trail
        Tryton does not keep of refusals); a warning is confirmed, as a user clicks yes."""
        confirmed: list[str] = []
        for _ in range(5):
            try:
                action()
                message = (
                    f"accepted after confirming Tryton's warning: {'; '.join(confirmed)}"
                    if confirmed
                    else ""
                )
                return Answer(True, message=message)
            except TrytonWarning as exc:
                confirmed.append(exc.message)
                self._call(
                    self.rpc.create,
                    "res.user.warning",
                    [{"user": self.rpc.user_id, "name": exc.name, "always": False}],
                )
            except TrytonUserError as exc:
                rule = _rule(exc)
                self.refused.append(Refusal(rule=rule, object_ref=what, message=exc.message))
                return Answer(False, rule=rule, message=exc.message, status=409)
            except TrytonUnavailable as exc:
                raise SutUnavailable(str(exc)) from exc
            except TrytonError as exc:
                self.refused.append(Refusal(rule=exc.kind, object_ref=what, message=exc.message))
                return Answer(False, rule=exc.kind, message=exc.message, status=500)
        return Answer(False, rule="TRYTON_WARNING", message="; ".join(confirmed), status=409)

    def _production(self, order: str) -> int:
        pid = self.productions.get(order)
        if pid is None:
            found = self._call(self.rpc.search, "production", [("reference", "=", order)])
            if not found:
                raise KeyError(order)
            pid = self.productions[order] = found[0]
        return pid

    def _work(self, order: str, segment: str) -> dict[str, Any]:
        product = self.order_product[order]
        works = self._call(
            self.rpc.search_read,
            "production.work",
            [
                ("production", "=", self._production(order)),
                ("operation.name", "=", f"{product}/{segment}"),
            ],
            ["id", "work_center", "state", "timesheet_work"],
        )
        if not works:
            raise KeyError(f"{order}/{segment}")
        return dict(works[0])

    # -- master data ---------------------------------------------------------------------

    def load_master_data(self, plant: PlantModel) -> None:
        self.plant = plant
        self._call(self.rpc.login, "admin", _admin_password())
        self.md = self._call(load_plant, self.rpc, plant)
        for product in plant.products:
            last = product.segments[-1]
            for line in plant.lines:
                for wu in line.work_units:
                    if line.code == product.line and wu.equipment_class == last.equipment_class:
                        self.last_work_unit[product.id] = wu.code

    # -- ERP and supervisor ----------------------------------------------------------------

    def send_order(self, order: OrderRequest) -> Answer:
        assert self.plant is not None
        product = self.plant.product(order.product)
        self.order_product[order.id] = product.id
        md = self.md
        values = {
            "reference": order.id,
            "company": md.company,
            "warehouse": md.warehouse,
            "location": md.production_location,
            "product": md.products[product.material],
            "bom": md.boms[product.id],
            "routing": md.routings[product.id],
            "work_center": md.lines[product.line],
            "unit": md.units[product.material],
            "quantity": float(order.quantity),
            "planned_start_date": self._date(order.release_at),
            "planned_date": self._date(order.due if order.due is not None else order.release_at),
        }

        def create() -> None:
            if order.id in self.productions:
                return
            pid = self.rpc.create("production", [values])[0]
            self.productions[order.id] = pid
            self.rpc.call("production", "wait", [pid])

        return self._answer(f"job_order:{order.id}", create)

    def dispatch_order(self, order: str, work_units: dict[str, str]) -> Answer:
        def dispatch() -> None:
            for segment, wu in work_units.items():
                work = self._work(order, segment)
                self.rpc.write(
                    "production.work", [work["id"]], {"work_center": self.md.work_centers[wu]}
                )

        return self._answer(f"job_order:{order}", dispatch)

    # -- operators -----------------------------------------------------------------------

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        employee = self.md.employees.get(person)

        def start() -> None:
            if employee is None:
                raise TrytonUserError("UserError", f"no employee {person} in Tryton")
            work = self._work(order, segment)
            center = self.md.work_centers.get(work_unit)
            if center is None:
                raise TrytonUserError("UserError", f"no work center {work_unit} in Tryton")
            if work["work_center"] != center:
                self.rpc.write("production.work", [work["id"]], {"work_center": center})
            cycle = self.rpc.create("production.work.cycle", [{"work": work["id"]}])
            self.rpc.call("production.work.cycle", "run", cycle, context={"employee": employee})
            self.starts[(order, segment)] = (at, person)

        answer = self._answer(f"job_order:{order}/{segment}", start)
        uncertified = self._uncertified(order, segment, person, at)
        if answer.accepted and uncertified:
            return Answer(True, message=f"{uncertified}; {NOT_CHECKABLE['uncertified_operator']}")
        return answer

    def _uncertified(self, order: str, segment: str, person: str, at: float) -> str:
        """Why the plant model says ``person`` may not do ``segment`` ('' if they may)."""
        if self.plant is None or order not in self.order_product:
            return ""
        seg = next(
            (x for x in self.plant.product(self.order_product[order]).segments if x.id == segment),
            None,
        )
        if seg is None or seg.skill is None:
            return ""
        op = next((o for o in self.plant.operators if o.id == person), None)
        on = (self.plant_start + dt.timedelta(seconds=at)).date()
        if op is None or not any(
            c.skill == seg.skill and c.expires >= on for c in op.certifications
        ):
            return f"{person} holds no valid certification for {seg.skill} on {on}"
        return ""

    def complete_operation(
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        *,
        lot_quantity: float | None = None,
    ) -> Answer:
        """``lot_quantity`` (a quantity the operator declares for the output lot) is not
        booked: Tryton's output moves carry the counted good units, so a difference shows
        in the reconciliation as the lot's quantity."""
        employee = self.md.employees.get(person)

        def complete() -> None:
            if employee is None:
                raise TrytonUserError("UserError", f"no employee {person} in Tryton")
            work = self._work(order, segment)
            running = self.rpc.search(
                "production.work.cycle", [("work", "=", work["id"]), ("state", "=", "running")]
            )
            began, starter = self.starts.get((order, segment), (at, person))
            seconds = max(0.0, at - began)
            if running:
                self.rpc.write(
                    "production.work.cycle",
                    running,
                    {"duration": dt.timedelta(seconds=seconds / len(running))},
                )
                self.rpc.call(
                    "production.work.cycle", "do", running, context={"employee": employee}
                )
            if work.get("timesheet_work"):
                self.rpc.create(
                    "timesheet.line",
                    [
                        {
                            "company": self.md.company,
                            "employee": self.md.employees.get(starter, employee),
                            "work": work["timesheet_work"],
                            "date": self._date(began),
                            "duration": dt.timedelta(seconds=seconds),
                            "description": f"{order}/{segment}",
                        }
                    ],
                )
            if output_lot is not None:
                self._finish(order, output_lot, employee)

        return self._answer(f"job_order:{order}/{segment}", complete)

    def _finish(self, order: str, output_lot: str, employee: int) -> None:
        pid = self._production(order)
        product = (
            self.md.products[self.plant.product(self.order_product[order]).material]
            if self.plant
            else 0
        )
        with self._lock:
            self._book_order(order)
            good_moves = self._output_moves(pid, self.md.storage)
        state = self.rpc.read("production", [pid], ["state"])[0]["state"]
        if state == "waiting":
            self.rpc.call("production", "assign_try", [pid])
            state = self.rpc.read("production", [pid], ["state"])[0]["state"]
        if state == "waiting":
            raise TrytonUserError(
                "UserError",
                f"Tryton could not assign the inputs of {order}: not enough of a lot in storage",
            )
        if state == "assigned":
            # the inputs booked meanwhile are consumed now (Tryton consumes at run)
            self.rpc.call("production", "run", [pid], context={"employee": employee})
        lot = self.rpc.search("stock.lot", [("number", "=", output_lot)], limit=1)
        lot_id = (
            lot[0]
            if lot
            else self.rpc.create("stock.lot", [{"number": output_lot, "product": product}])[0]
        )
        if good_moves:
            self.rpc.write("stock.move", good_moves, {"lot": lot_id})
        self.rpc.call("production", "do", [pid], context={"employee": employee})

    def consume_lot(
        self, order: str, segment: str, lot: str, quantity: float, person: str, at: float
    ) -> Answer:
        def consume() -> None:
            pid = self._production(order)
            lots = self.rpc.search_read("stock.lot", [("number", "=", lot)], ["id", "product"])
            if not lots:
                raise TrytonUserError("UserError", f"Tryton knows no lot {lot}")
            # a draft input: Tryton consumes the inputs when the production runs
            self.rpc.create(
                "stock.move",
                [
                    {
                        "production_input": pid,
                        "product": lots[0]["product"],
                        "lot": lots[0]["id"],
                        # the plant unit's precision in Tryton (masterdata: 7 digits)
                        "quantity": round(quantity, 7),
                        "unit": self._unit_of(lots[0]["product"]),
                        "from_location": self.md.storage,
                        "to_location": self.md.production_location,
                        "company": self.md.company,
                        "effective_date": self._date(at),
                    }
                ],
            )

        answer = self._answer(f"lot:{lot}", consume)
        expired = self._expired(lot, at)
        if answer.accepted and expired:
            return Answer(True, message=f"{expired}; {NOT_CHECKABLE['expired_lot']}")
        return answer

    def _expired(self, lot: str, at: float) -> str:
        """Why the plant model says ``lot`` was expired at ``at`` ('' if it was not)."""
        spec = (
            next((x for x in self.plant.material_lots if x.id == lot), None) if self.plant else None
        )
        if spec is None or spec.expiry is None:
            return ""
        on = (self.plant_start + dt.timedelta(seconds=at)).date()
        return f"lot {lot} expired on {spec.expiry}" if spec.expiry < on else ""

    def _unit_of(self, product: int) -> int:
        for material, pid in self.md.products.items():
            if pid == product:
                return self.md.units[material]
        raise TrytonUserError("UserError", f"product {product} is not a plant material")

    # -- QA --------------------------------------------------------------------------------

    def held(self) -> list[str]:
        alerts = self._call(
            self.rpc.search_read,
            "quality.alert",
            [("state", "in", ["open", "processing"])],
            ["number", "origin"],
        )
        return [f"alert:{a['number']}" for a in alerts]

    def holds_of(self, target: str) -> list[str]:
        number = target.removeprefix("alert:")
        alerts = self._call(
            self.rpc.search_read, "quality.alert", [("number", "=", number)], ["origin"]
        )
        out: list[str] = []
        for alert in alerts:
            origin = str(alert.get("origin") or "")
            if origin.startswith("quality.inspection,"):
                insp = self._call(
                    self.rpc.read,
                    "quality.inspection",
                    [int(origin.split(",")[1])],
                    ["origin"],
                )
                origin = str(insp[0].get("origin") or "") if insp else ""
            if origin.startswith("production,"):
                pid = int(origin.split(",")[1])
                for order, p in self.productions.items():
                    if p == pid:
                        out.append(f"job_order:{order}")
        return out

    def hold_reason(self, target: str) -> tuple[str, str] | None:
        """Tryton's reason for an alert: the failed inspection behind it, with the value
        and the tolerance it broke (Tryton's own word: the inspection failed)."""
        number = target.removeprefix("alert:")
        alerts = self._call(
            self.rpc.search_read, "quality.alert", [("number", "=", number)], ["origin"]
        )
        origin = str(alerts[0].get("origin") or "") if alerts else ""
        if not origin.startswith("quality.inspection,"):
            return None
        inspection = self._call(
            self.rpc.read,
            "quality.inspection",
            [int(origin.split(",")[1])],
            ["number", "points", "control"],
        )[0]
        points = self._call(
            self.rpc.search_read,
            "quality.control.point",
            [("control", "=", inspection["control"])],
            ["name", "tolerance_lower", "tolerance_upper"],
        )
        values = inspection.get("points") or {}
        broken = "; ".join(
            f"{p['name']} {values.get(p['name'])} outside "
            f"[{p['tolerance_lower']}, {p['tolerance_upper']}]"
            for p in points
        )
        return "inspection_failed", f"quality inspection {inspection['number']} failed: {broken}"

    def dispose(
        self,
        target: str,
        person: str,
        password: str,
        decision: str,
        reason: str,
        at: float | None = None,
    ) -> Answer:
        number = target.removeprefix("alert:")
        employee = self.md.employees.get(person)

        def resolve() -> None:
            alerts = self.rpc.search_read(
                "quality.alert", [("number", "=", number)], ["id", "state"]
            )
            if not alerts:
                raise TrytonUserError("UserError", f"no quality alert {number}")
            ctx = {"employee": employee}
            if alerts[0]["state"] == "open":
                self.rpc.call("quality.alert", "process", [alerts[0]["id"]], context=ctx)
            self.rpc.call("quality.alert", "resolve", [alerts[0]["id"]], context=ctx)

        return self._answer(target, resolve)

    # -- equipment traffic (the gateway) ----------------------------------------------------

    def subscribe(self, endpoint: str) -> None:
        """Start the OPC UA gateway on the twin's server ``endpoint``."""
        rpc = TrytonRpc(self.url, self.database)
        rpc.login("admin", _admin_password())
        rpc.context = self.rpc.context  # shared: the company is set when master data loads
        self._collector_rpc = rpc
        self.collector = OpcUaCollector(endpoint, self._book).start()  # connects by itself

    # -- read back -------------------------------------------------------------------------

    def orders(self) -> list[OrderView]:
        views: list[OrderView] = []
        for order in sorted(self.productions):
            pid = self.productions[order]
            prod = self._call(self.rpc.read, "production", [pid], ["state", "quantity", "works"])[0]
            rec = self._order_record(pid)
            works = self._call(
                self.rpc.read,
                "production.work",
                prod["works"],
                ["operation.name", "state", "work_center.name"],
            )
            views.append(
                OrderView(
                    id=order,
                    product=self.order_product.get(order, ""),
                    quantity=int(prod["quantity"] or 0),
                    state=STATES.get(prod["state"], prod["state"]),
                    good=rec.good,
                    scrap=rec.scrap,
                    operations=[
                        OperationView(
                            segment=str(w["operation."]["name"]).split("/", 1)[-1],
                            state={"finished": "completed", "done": "completed"}.get(
                                w["state"], w["state"]
                            ),
                            work_unit=(w.get("work_center.") or {}).get("name"),
                        )
                        for w in works
                    ],
                )
            )
        return views

    def _order_record(self, pid: int) -> OrderRecord:
        rec = OrderRecord()
        moves = self._call(
            self.rpc.search_read,
            "stock.move",
            [
                ["OR", ("production_input", "=", pid), ("production_output", "=", pid)],
                ("state", "!=", "cancelled"),
            ],
            ["production_input", "to_location", "quantity", "lot.number"],
        )
        for m in moves:
            lot = (m.get("lot.") or {}).get("number")
            q = float(m["quantity"] or 0)
            if m["production_input"]:
                if lot:
                    rec.lots_consumed[lot] = rec.lots_consumed.get(lot, 0.0) + q
            elif m["to_location"] == self.md.lost_found:
                rec.scrap += round(q)
            else:
                rec.good += round(q)
                if lot:
                    rec.lots_produced[lot] = rec.lots_produced.get(lot, 0.0) + q
        return rec

    def refusals(self) -> list[Refusal]:
        return list(self.refused)

    def records(self, plant: PlantModel, until: float) -> Records:
        # A work cycle holds a duration and a cost, no quantity: counts live on the
        # production's moves only, so work units cannot be reconciled (not checked).
        out = Records(per_work_unit=False)
        for order in sorted(self.productions):
            rec = self._order_record(self.productions[order])
            out.job_orders[order] = rec
            for parent in rec.lots_consumed:
                for child in rec.lots_produced:
                    out.genealogy.add((parent, child))
        self._read_operation_time(out)
        return out

    def _read_operation_time(self, out: Records) -> None:
        """Seconds each operation ran (its done work cycles' durations) and the labour
        booked with it (timesheet lines on the work's timesheet work: employee, hours).
        Tryton keeps a cycle's duration, not its start and end times, and books labour
        per operation (no attendance): ``operation_seconds`` and
        ``labour_from_operations``."""
        by_id = {pid: order for order, pid in self.productions.items()}
        works = self._call(
            self.rpc.search_read,
            "production.work",
            [("production", "in", list(by_id))],
            ["id", "production", "operation.name", "timesheet_work"],
        )
        key_of = {
            w["id"]: (by_id[w["production"]], str(w["operation."]["name"]).split("/", 1)[-1])
            for w in works
        }
        seconds: dict[tuple[str, str], float] = {}
        cycles = self._call(
            self.rpc.search_read,
            "production.work.cycle",
            [("work", "in", list(key_of)), ("state", "=", "done")],
            ["work", "duration"],
        )
        for c in cycles:
            key = key_of[c["work"]]
            ran = c["duration"].total_seconds() if c["duration"] is not None else 0.0
            seconds[key] = round(seconds.get(key, 0.0) + ran, 3)
        out.operation_seconds = seconds
        sheet_of = {w["timesheet_work"]: key_of[w["id"]] for w in works if w["timesheet_work"]}
        person_of = {emp: person for person, emp in self.md.employees.items()}
        labour = LabourHours()
        lines = self._call(
            self.rpc.search_read,
            "timesheet.line",
            [("work", "in", list(sheet_of))],
            ["work", "employee", "duration"],
        )
        for line in lines:
            order = sheet_of[line["work"]][0]
            person = person_of.get(line["employee"], f"employee {line['employee']}")
            hours = line["duration"].total_seconds() / 3600.0
            labour.by_person[person] = labour.by_person.get(person, 0.0) + hours
            labour.by_order[order] = labour.by_order.get(order, 0.0) + hours
        out.labour = labour
        out.labour_from_operations = True

    def ingest_stats(self) -> IngestStats:
        c = self.collector
        return IngestStats(accepted=c.events if c else 0, duplicates=0)

    def latencies_ms(self) -> list[float]:
        return list(self.rpc.latencies_ms)

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None
        if self._collector_rpc is not None:
            self._collector_rpc.close()
        self.rpc.close()


def _admin_password() -> str:
    from mestwin_tryton.server import ADMIN_PASSWORD

    return ADMIN_PASSWORD
