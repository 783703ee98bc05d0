"""B2MML V0701 ``ProcessOperationsSchedule`` documents the simulated ERP sends.

Kept apart from the locustfile so that it can be checked against the MES's own parser in
a test without importing Locust (which monkey-patches the interpreter with gevent).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from loadtests.seed import SeedManifest

SCHEDULE = """<?xml version="1.0" encoding="UTF-8"?>
<ProcessOperationsSchedule xmlns="http://www.mesa.org/xml/B2MML" releaseID="V0701">
  <ApplicationArea>
    <Sender><LogicalID>ERP-LOADTEST</LogicalID></Sender>
    <CreationDateTime>{now}</CreationDateTime>
    <BODID>{schedule}</BODID>
  </ApplicationArea>
  <DataArea>
    <Process/>
    <OperationsSchedule>
      <ID>{schedule}</ID>
      <OperationsType>Production</OperationsType>
{requests}
    </OperationsSchedule>
  </DataArea>
</ProcessOperationsSchedule>
"""

REQUEST = """      <OperationsRequest>
        <ID>{order}</ID>
        <OperationsType>Production</OperationsType>
        <OperationsDefinitionID>{routing}</OperationsDefinitionID>
        <SegmentRequirement>
          <ID>{order}-1</ID>
          <ProcessSegmentID>MIX</ProcessSegmentID>
          <OperationsDefinitionID>{routing}</OperationsDefinitionID>
          <OperationsSegmentID>1</OperationsSegmentID>
          <MaterialRequirement>
            <ID>{order}-OUT</ID>
            <MaterialDefinitionID>{product}</MaterialDefinitionID>
            <MaterialUse>Produced</MaterialUse>
            <Quantity><QuantityString>{quantity}</QuantityString>\
<UnitOfMeasure>ea</UnitOfMeasure></Quantity>
          </MaterialRequirement>
        </SegmentRequirement>
      </OperationsRequest>"""


def schedule_document(s: SeedManifest, orders: int) -> tuple[bytes, list[str]]:
    """A B2MML V0701 ``ProcessOperationsSchedule`` of ``orders`` production requests."""
    schedule = f"{s.prefix}-SCHED-{uuid.uuid4().hex[:10]}"
    codes = [f"{schedule}-{i}" for i in range(1, orders + 1)]
    requests = "\n".join(
        REQUEST.format(
            order=code,
            routing=s.routing,
            product=s.product,
            quantity=random.choice((500, 1000, 2000)),
        )
        for code in codes
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = SCHEDULE.format(now=now, schedule=schedule, requests=requests)
    return document.encode("utf-8"), codes
