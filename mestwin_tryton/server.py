"""A ``trytond`` for a run: SQLite database with the production modules, on a free port.

Creating a database and activating the modules takes ``trytond-admin`` about half a
minute of CPU, so it is done once per Tryton version and module set into a template
(``$MESTWIN_TRYTON_CACHE``, default ``~/.cache/mestwin/tryton``) that each run copies.
The server runs as ``trytond -c <conf>`` in its own process group, logging into the run's
folder, and is reached only over its JSON-RPC at ``http://127.0.0.1:<port>/<db>/rpc/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from mestwin_tryton.rpc import TrytonRpc, TrytonUnavailable

# The modules a bottling or tablet line needs (their dependencies come along).
MODULES: tuple[str, ...] = (
    "production_work_timesheet",
    "production_routing",
    "stock_lot",
    "quality",
)
ADMIN = "admin"
ADMIN_PASSWORD = "mestwin-admin"
ADMIN_EMAIL = "admin@mestwin.invalid"


class TrytonStartError(RuntimeError):
    """trytond or trytond-admin could not be found, failed, or did not answer in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    here = Path(sys.executable).with_name(name)
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise TrytonStartError(
            f"{name} not found: install the extra with pip install -e '.[tryton]'"
        )
    return found


def tryton_version() -> str:
    try:
        return metadata.version("trytond")
    except metadata.PackageNotFoundError as exc:
        raise TrytonStartError("trytond is not installed: pip install -e '.[tryton]'") from exc


def _config(path: Path, database_dir: Path, port: int) -> None:
    path.write_text(
        "[database]\n"
        "uri = sqlite://\n"
        f"path = {database_dir}\n"
        "[web]\n"
        f"listen = 127.0.0.1:{port}\n"
        "[session]\n"
        # a scenario run may last longer than the default 30 min of wall time between calls
        "timeout = 86400\n"
        "max_attempt = 100\n",
        encoding="utf-8",
    )


def cache_dir() -> Path:
    env = os.environ.get("MESTWIN_TRYTON_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mestwin" / "tryton"


def template_database(log: Path | None = None) -> Path:
    """The template SQLite file (created by ``trytond-admin`` the first time)."""
    versions = ",".join(
        f"{d.metadata['Name']}={d.version}"
        for d in sorted(metadata.distributions(), key=lambda d: str(d.metadata["Name"]))
        if str(d.metadata["Name"]).lower().startswith("trytond")
    )
    key = hashlib.sha256(f"{versions}|{','.join(MODULES)}".encode()).hexdigest()[:16]
    target = cache_dir() / f"template-{tryton_version()}-{key}.sqlite"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One creator at a time (parallel test workers, runs side by side): the others wait
    # for its template instead of each spending the half minute of CPU on their own.
    with target.with_name(target.name + ".lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _create_template(target, log)
    return target


def _create_template(target: Path, log: Path | None) -> None:
    """Run ``trytond-admin`` on a fresh database and move it into place as ``target``."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        conf = work / "trytond.conf"
        _config(conf, work, free_port())
        (work / "template.sqlite").touch()
        passfile = work / "password"
        passfile.write_text(ADMIN_PASSWORD + "\n", encoding="utf-8")
        env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
        cmd = [
            _bin("trytond-admin"),
            "-c",
            str(conf),
            "-d",
            "template",
            "--email",
            ADMIN_EMAIL,
            "-u",
            *MODULES,
            "--activate-dependencies",
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if log is not None:
            log.write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise TrytonStartError(
                f"trytond-admin failed (exit {done.returncode}): " + " | ".join(tail)
            )
        # rename is atomic: a reader never finds half a template
        os.replace(work / "template.sqlite", target)


class TrytonServer:
    """One trytond process serving one database in ``folder``."""

    def __init__(self, folder: Path, database: str = "mestwin", port: int | None = None) -> None:
        self.folder = folder.resolve()
        self.database = database
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_database(self) -> Path:
        """The run's database: a copy of the template (fresh unless it exists already)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.database}.sqlite"
        if not path.exists():
            shutil.copyfile(template_database(self.folder / "trytond-admin.log"), path)
        return path

    def start(self, timeout: float = 60.0) -> None:
        self.create_database()
        conf = self.folder / "trytond.conf"
        _config(conf, self.folder, self.port)
        log = (self.folder / "trytond.log").open("ab")
        self.process = subprocess.Popen(
            [_bin("trytond"), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # the pool is initialised at start-up, not by the first login
            env={**os.environ, "TRYTOND_DATABASE_NAMES": self.database},
        )
        log.close()
        deadline = time.monotonic() + timeout
        rpc = TrytonRpc(self.url, self.database, timeout=5.0)
        try:
            while True:
                if self.process.poll() is not None:
                    raise TrytonStartError(
                        f"trytond exited with {self.process.returncode}; see "
                        f"{self.folder / 'trytond.log'}"
                    )
                try:
                    rpc.server_version()
                    return
                except TrytonUnavailable:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise TrytonStartError(
                            f"trytond did not answer on {self.url} within {timeout:g} s"
                        ) from None
                    time.sleep(0.2)
        finally:
            rpc.close()

    def rpc(self) -> TrytonRpc:
        """A session logged in as the administrator."""
        rpc = TrytonRpc(self.url, self.database)
        rpc.login(ADMIN, ADMIN_PASSWORD)
        return rpc

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> TrytonServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
