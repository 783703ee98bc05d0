"""A tiny Locust file for the distributed test: each request names the process it came
from, so the target can tell the workers apart."""

import os

from locust import HttpUser, constant, task


class Probe(HttpUser):
    wait_time = constant(0.05)

    @task
    def probe(self) -> None:
        self.client.get("/probe", headers={"X-Locust-Pid": str(os.getpid())}, name="probe")
