"""``bench api`` sets its users' job orders up before Locust measures (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.config import Seed
from loadtests.seed import running_job_orders, seed_mes
from mes_core.client import MesClient
from mes_core.demo import ServerThread
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings

ADMIN_PASSWORD = "bench-admin"


def test_each_user_gets_a_running_job_order_its_operator_may_report_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mes.db'}"
    upgrade(url)
    with ServerThread(Settings(database_url=url, admin_password=ADMIN_PASSWORD)) as server:
        seed = seed_mes(
            server.url,
            Seed(work_units_per_class=2, operators=3),
            admin_user="admin",
            admin_password=ADMIN_PASSWORD,
        )
        path = tmp_path / "job-orders.json"
        running_job_orders(server.url, seed, 4, path)
        jobs = json.loads(path.read_text())
        assert len(jobs) == 4 and len({job["code"] for job in jobs}) == 4
        assert {job["operator"] for job in jobs} == set(seed.operators)
        for job in jobs:
            with MesClient(server.url, token=seed.tokens[job["operator"]]) as operator:
                order = operator.get_job_order(job["code"])
                assert order.state == "running"
                assert order.operations[0].state == "running"
                progress = operator.report_quantities(job["code"], 1, good=3)
                assert progress.good == 3
