"""`make run`: start embedded NATS and PostgreSQL, create streams and schema, run every service.

Each service is a separate process (`python -m services.<name>`). Ctrl-C (or SIGTERM) stops the
services, then NATS, then PostgreSQL, and leaves no process behind. A service that dies is
restarted after a short back-off. Set SHOEBOX_NATS_URL / SHOEBOX_DATABASE_URL to use external
servers instead of the embedded ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from shared.bus import connect, ensure_streams
from shared.db import create_engine, create_schema
from shared.health import probe
from shared.infra import (
    free_port,
    postmaster_pid,
    prepare_runtime_dir,
    restart_postgres,
    start_nats,
    start_postgres,
)
from shared.service import setup_logging
from shared.settings import Settings, load_settings

log = logging.getLogger("shoebox.dev")

SERVICES = ["projector", "api", "scanner", "metadata", "watcher"]
PR_SET_CHILD_SUBREAPER = 36
PROBE_EVERY = 2.0  # seconds between health probes of each service
PROBE_TIMEOUT = 1.0
LIVENESS_FAILURES = 3  # failed liveness probes in a row before a service is restarted
START_GRACE = 60.0  # seconds a starting service may take to answer its first probe


def become_subreaper() -> None:
    """PostgreSQL daemonises; as a subreaper we inherit and reap it instead of leaving zombies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


async def bootstrap(settings: Settings) -> None:
    """Create the streams, buckets and read-model schema (idempotent)."""
    nc = await connect(settings.nats, "bootstrap")
    try:
        await ensure_streams(nc, settings.nats)
    finally:
        await nc.drain()
    engine = create_engine(settings.db.url, pool=False)
    try:
        await create_schema(engine)
    finally:
        await engine.dispose()


class Supervisor:
    """Starts the service processes and keeps them running until asked to stop."""

    def __init__(
        self, env: dict[str, str], servers: list[tuple[str, Callable[[], bool], Callable[[], None]]]
    ) -> None:
        self.env = env
        # The embedded servers: (name, is it running?, start it again).
        self.servers = servers
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, float] = {}
        self.server_retry: dict[str, float] = {}
        self.stopping = False
        # Health: each worker's own port (the api's is its HTTP port), probed every 2 s.
        self.health_urls: dict[str, str] = {}
        self.spawned_at: dict[str, float] = {}
        self.live_once: set[str] = set()
        self.failures: dict[str, int] = {}
        self.next_probe = 0.0
        self.all_ready = False

    def spawn(self, name: str) -> None:
        env = dict(self.env)
        base = env.get("SHOEBOX_METRICS_PORT")
        if base:  # one port per service: base, base+1, ... in SERVICES order
            env["SHOEBOX_METRICS_PORT"] = str(int(base) + SERVICES.index(name))
        settings = load_settings(env)
        host = settings.host
        if name == "api":
            port = settings.port
        else:  # a free port of its own, so that workers never share one
            port = free_port()
            env["SHOEBOX_HEALTH_PORT"] = str(port)
        probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.health_urls[name] = f"http://{probe_host}:{port}"
        # Its health state first: the probe thread looks at whatever is in self.procs.
        self.spawned_at[name] = time.monotonic()
        self.live_once.discard(name)
        self.failures[name] = 0
        self.procs[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env)
        log.info("started %s (pid %d)", name, self.procs[name].pid)

    def probe_all(self) -> None:
        """Restart a service whose liveness failed LIVENESS_FAILURES times in a row (after it
        once answered, or after START_GRACE), and say once when every service is ready."""
        if time.monotonic() < self.next_probe:
            return
        self.next_probe = time.monotonic() + PROBE_EVERY
        ready = 0
        for name, proc in list(self.procs.items()):
            if self.stopping:
                return
            url = self.health_urls[name]
            if probe(f"{url}/livez", PROBE_TIMEOUT):
                self.live_once.add(name)
                self.failures[name] = 0
                ready += probe(f"{url}/readyz", PROBE_TIMEOUT)
                continue
            starting = time.monotonic() - self.spawned_at[name] < START_GRACE
            if name not in self.live_once and starting:
                continue
            self.failures[name] += 1
            if (
                self.failures[name] >= LIVENESS_FAILURES
                and proc.poll() is None
                and not self.stopping
            ):
                log.warning(
                    "%s failed %d liveness checks (%s/livez); restarting it",
                    name,
                    self.failures[name],
                    url,
                )
                proc.kill()  # watch() sees it exit and starts it again
        if ready == len(SERVICES) and not self.all_ready:
            log.info("every service is ready: %s", ", ".join(SERVICES))
        self.all_ready = ready == len(SERVICES)

    def probe_forever(self) -> None:
        """The health probes, in a thread of their own: a slow probe never delays the restart
        of a dead process or server in watch()."""
        while not self.stopping:
            try:
                self.probe_all()
            except Exception:  # a probe that went wrong must not stop the probing
                log.exception("health probes failed; trying again")
            time.sleep(0.2)

    def watch(self) -> None:
        threading.Thread(target=self.probe_forever, name="probes", daemon=True).start()
        while not self.stopping:
            for name, running, restart in self.servers:
                if running() or time.monotonic() < self.server_retry.get(name, 0.0):
                    continue
                log.warning("%s is not running; starting it again", name)
                self.server_retry[name] = time.monotonic() + 2  # at most every 2 s
                try:
                    restart()
                except Exception:
                    log.exception("%s did not start; trying again in 2 s", name)
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping:
                    log.warning("%s exited with %s; restarting in 2 s", name, proc.returncode)
                    self.restarts[name] = time.monotonic() + 2
                    del self.procs[name]
            for name, at in list(self.restarts.items()):
                if time.monotonic() >= at and not self.stopping:
                    del self.restarts[name]
                    self.spawn(name)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-1, os.WNOHANG)  # reap adopted orphans (daemonised postgres)
            time.sleep(0.2)

    def stop(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                proc.kill()
                proc.wait()


def main() -> None:
    become_subreaper()
    settings = load_settings()
    setup_logging(settings.log_level, "dev")
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    (data / "upload").mkdir(exist_ok=True)
    prepare_runtime_dir(data)
    env = dict(os.environ)
    env["SHOEBOX_DATA"] = str(data)
    env["PYTHONUNBUFFERED"] = "1"

    stop_requested = False

    def _request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)

    nats_proc: subprocess.Popen[bytes] | None = None
    pg_server = None

    def _start_nats() -> None:
        nonlocal nats_proc
        # Its own session: Ctrl-C reaches the terminal's process group, and NATS must outlive
        # the services (they stop first, then NATS; otherwise they log reconnect tracebacks).
        nats_proc = start_nats(data / "nats", settings.nats.port, start_new_session=True)
        log.info("nats-server on %s (store %s)", settings.nats.url, data / "nats")

    def _nats_running() -> bool:
        return nats_proc is not None and nats_proc.poll() is None

    def _start_pg() -> None:
        nonlocal pg_server
        if pg_server is None:
            pg_server, uri = start_postgres(data / "pg", cleanup_mode="stop")
            env["SHOEBOX_DATABASE_URL"] = uri
        else:  # it died: the same folder and socket, so the services reconnect by themselves
            restart_postgres(pg_server, data / "pg")
        log.info("postgresql in %s (pid %s)", data / "pg", postmaster_pid(data / "pg"))

    servers: list[tuple[str, Callable[[], bool], Callable[[], None]]] = []
    if settings.nats.embedded:
        servers.append(("nats-server", _nats_running, _start_nats))
    if settings.db.embedded:
        servers.append(("postgresql", lambda: postmaster_pid(data / "pg") is not None, _start_pg))
    supervisor = Supervisor(env, servers)
    try:
        if settings.nats.embedded:
            _start_nats()
        if settings.db.embedded:
            _start_pg()
        settings = load_settings(env)
        asyncio.run(bootstrap(settings))
        for name in SERVICES:
            supervisor.spawn(name)
        log.info(
            "Shoebox is up: http://%s:%d/api  (Ctrl-C stops everything)",
            settings.host,
            settings.port,
        )
        supervisor.watch()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        supervisor.stop()
        if nats_proc is not None:
            nats_proc.terminate()
            try:
                nats_proc.wait(10)
            except subprocess.TimeoutExpired:
                nats_proc.kill()
        if pg_server is not None:
            pg_server.cleanup()  # the server started last, if it was restarted meanwhile
        log.info("stopped")


if __name__ == "__main__":
    main()
