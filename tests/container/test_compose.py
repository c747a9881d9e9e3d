"""deploy/compose.yaml run for real: the image built, the stack up on a private dockerd, a
read-only folder of real photos scanned, scanners scaled, and the data still there after
`down`/`up` and after the engine itself restarts (as after a reboot)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.infra import free_port
from tests.container.engine import ROOT, Engine, unavailable
from tests.helpers import ADMIN, SAMPLES

pytestmark = [pytest.mark.container, pytest.mark.slow]

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
CLUSTER_FILE = ROOT / "deploy" / "compose.cluster.yaml"
IMAGE = "shoebox:container-test"
PHOTOS = ["Canon_40D.jpg", "Nikon_D70.jpg", "Pentax_K10D.jpg", "Sony_HDR-HC3.jpg"]
LATE_PHOTO = "Olympus_C8080WZ.jpg"
# The health contract (python -m shared.health URL); the stack is only checked healthy once
# the code serving it exists.
HAS_HEALTH = (ROOT / "shared" / "health.py").exists()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass  # not answering yet
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)  # a poll interval, not a wait for an outcome


@dataclass
class Stack:
    """One compose project on the private engine."""

    engine: Engine
    project: str
    env: dict[str, str]
    api: str
    photos: Path
    files: list[Path] = field(default_factory=lambda: [COMPOSE_FILE])
    headers: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, check: bool = True) -> str:
        files = [arg for f in self.files for arg in ("-f", str(f))]
        return self.engine.compose(*files, "-p", self.project, *args, env=self.env, check=check)

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json", *([service] if service else []))
        # Compose prints one JSON object a line (older versions: one JSON array).
        text = out.strip()
        if text.startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def running(self, service: str) -> int:
        return sum(1 for c in self.containers(service) if c["State"] == "running")

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers=self.headers, timeout=30)

    def ping(self) -> bool:
        """Whether the API answers pong (a port the engine holds for a down container may
        accept and then close)."""
        try:
            with httpx.Client(base_url=self.api, timeout=5) as http:
                r = http.get("/server/ping")
                return r.status_code == 200 and r.json() == {"res": "pong"}
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    why = unavailable()
    if why:
        pytest.skip(f"container tests skipped: {why}")
    eng = Engine()
    eng.start()
    try:
        services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
        # The stand-ins take the names the compose file gives the official images.
        eng.ensure_standins(nats=services["nats"]["image"], postgres=services["postgres"]["image"])
        eng.build(IMAGE, ROOT, ROOT / "deploy" / "Dockerfile")
        eng.docker("image", "prune", "--force")  # the layers earlier builds left untagged
        yield eng
    finally:
        eng.stop()


@contextlib.contextmanager
def open_stack(engine: Engine, files: list[Path]) -> Iterator[Stack]:
    """A compose project over a fresh read-only photos folder; removed with its volumes."""
    photos = Path(tempfile.mkdtemp(prefix="shoebox-photos-"))
    photos.chmod(0o755)  # the services run as uid 1000
    for name in PHOTOS:
        shutil.copy(SAMPLES / "jpg" / name, photos / name)
        (photos / name).chmod(0o644)
    port = free_port()
    project = "sbtest" + uuid.uuid4().hex[:8]
    env = {"SHOEBOX_PHOTOS": str(photos), "SHOEBOX_PORT": str(port), "SHOEBOX_IMAGE": IMAGE}
    st = Stack(engine, project, env, f"http://127.0.0.1:{port}/api", photos, files)
    try:
        st.compose("up", "-d", "--no-build")
        yield st
    finally:
        st.compose("down", "--volumes", "--remove-orphans", check=False)
        shutil.rmtree(photos, ignore_errors=True)


@pytest.fixture
def stack(engine: Engine) -> Iterator[Stack]:
    with open_stack(engine, [COMPOSE_FILE]) as st:
        yield st


def wait_for_api(stack: Stack, timeout: float = 180) -> None:
    try:
        wait_until(stack.ping, timeout, "the API to answer ping")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None


def log_in(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api, timeout=30) as http:
        r = http.post("/auth/login", json={"email": ADMIN["email"], "password": ADMIN["password"]})
        assert r.status_code == 201, r.text
        stack.headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}


def library_assets(stack: Stack, library_id: str) -> list[dict[str, Any]]:
    with stack.http() as http:
        r = http.post("/search/metadata", json={"libraryId": library_id, "size": 1000})
        assert r.status_code == 200, r.text
        return list(r.json()["assets"]["items"])


def thumbnailed(stack: Stack, assets: list[dict[str, Any]]) -> bool:
    with stack.http() as http:
        for asset in assets:
            r = http.get(f"/assets/{asset['id']}/thumbnail")
            if r.status_code != 200 or not r.content.startswith(b"\xff\xd8"):
                return False
    return True


def sign_up_and_scan(stack: Stack) -> str:
    """Sign up the admin, grant /srv/photos, scan it; the library's id once every photo is an
    asset with a thumbnail."""
    with httpx.Client(base_url=stack.api, timeout=30) as http:
        r = http.post("/auth/admin-sign-up", json=ADMIN)
        assert r.status_code == 201, f"{r.status_code} {r.text}\n{stack.logs()}"
    log_in(stack)
    with stack.http() as http:
        me = http.get("/users/me").json()
        r = http.put(f"/admin/users/{me['id']}", json={"externalPath": "/srv/photos"})
        assert r.status_code == 200, r.text
        r = http.post(
            "/libraries",
            json={"ownerId": me["id"], "name": "NAS", "importPaths": ["/srv/photos"]},
        )
        assert r.status_code == 201, r.text
        library = str(r.json()["id"])
        assert http.post(f"/libraries/{library}/scan").status_code == 204

    def all_photos() -> bool:
        assets = library_assets(stack, library)
        return len(assets) == len(PHOTOS) and thumbnailed(stack, assets)

    try:
        wait_until(all_photos, 240, f"{len(PHOTOS)} assets with thumbnails")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    names = sorted(a["originalFileName"] for a in library_assets(stack, library))
    assert names == sorted(PHOTOS)
    return library


def test_compose_stack_scans_read_only_photos_and_keeps_them_across_restarts(
    stack: Stack,
) -> None:
    wait_for_api(stack)
    library = sign_up_and_scan(stack)

    # The runtime image: uid 1000, read-only root filesystem, no test or lint packages.
    api = stack.containers("api")[0]["Name"]
    inspect = json.loads(stack.engine.docker("inspect", api))[0]
    assert inspect["Config"]["User"] == "1000:1000"
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    probe = "import importlib.util as u; print([m for m in ('pytest','mypy','ruff','pgserver') if u.find_spec(m)])"  # noqa: E501
    assert stack.engine.docker("run", "--rm", IMAGE, "python", "-c", probe).strip() == "[]"
    # The operator's command line is in the image.
    assert "replay" in stack.compose("exec", "-T", "api", "shoebox", "--help")

    # Watching is on: a photo copied in later becomes an asset without a scan.
    shutil.copy(SAMPLES / "jpg" / LATE_PHOTO, stack.photos / LATE_PHOTO)
    (stack.photos / LATE_PHOTO).chmod(0o644)
    wait_until(
        lambda: len(library_assets(stack, library)) == len(PHOTOS) + 1,
        120,
        "the watcher to add the photo copied in",
    )
    count = len(PHOTOS) + 1

    # Two scanners by default; scale to three.
    assert stack.running("scanner") == 2
    stack.compose("up", "-d", "--no-build", "--scale", "scanner=3")
    wait_until(lambda: stack.running("scanner") == 3, 120, "three scanners")

    if HAS_HEALTH:
        wait_until(
            lambda: all(c.get("Health") == "healthy" for c in stack.containers()),
            180,
            "every container to report healthy",
        )

    # `down` then `up`: the named volumes keep NATS's stream and PostgreSQL's read models.
    stack.compose("down")
    stack.compose("up", "-d", "--no-build")
    wait_for_api(stack)
    log_in(stack)
    assert len(library_assets(stack, library)) == count

    # The engine restarts (as after a reboot): every container comes back by its restart
    # policy, and the API answers with the same data.
    stack.engine.stop()
    stack.engine.start()
    wait_for_api(stack)
    log_in(stack)
    assert len(library_assets(stack, library)) == count
    assert stack.running("postgres") == 1 and stack.running("nats") == 1
    assert stack.running("scanner") == 2


def test_cluster_compose_stack_scans_on_three_nats_nodes(engine: Engine) -> None:
    with open_stack(engine, [COMPOSE_FILE, CLUSTER_FILE]) as stack:
        assert all(stack.running(node) == 1 for node in ("nats", "nats-2", "nats-3"))
        unsupported = "invalid connect url option"

        def answers_or_refuses() -> bool:
            return unsupported in stack.logs() or stack.ping()

        wait_until(answers_or_refuses, 180, "the API to answer (or refuse the NATS URLs)")
        if not stack.ping() and unsupported in stack.logs():
            pytest.skip("the services do not accept several NATS URLs yet (issue 17, point 2)")
        sign_up_and_scan(stack)
        # The streams are replicated on the three nodes.
        jsz = stack.engine.docker(
            "exec", f"{stack.project}-nats-1", "wget", "-qO-",
            "http://127.0.0.1:8222/jsz?streams=true&config=true",
        )  # fmt: skip
        streams = [
            s for account in json.loads(jsz)["account_details"] for s in account["stream_detail"]
        ]
        assert streams
        assert {s["name"]: s["config"]["num_replicas"] for s in streams} == {
            s["name"]: 3 for s in streams
        }
