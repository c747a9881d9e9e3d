"""A 3-node JetStream cluster on loopback: Shoebox makes everything with 3 replicas, and a scan
ends with exact counts when the EVENTS stream's leader is killed mid-scan, and again once
that node is back on its store."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import api

from shared.bus import cluster_size, connect, ensure_streams
from shared.infra import free_port, start_nats_node
from shared.settings import NatsSettings
from tests.factories import jpeg_bytes
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import Infra, System, eventually, open_system, run_scanner

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FILES, DIRS = 3000, 60


@dataclass
class Cluster:
    root: Path
    ports: list[int]
    cluster_ports: list[int]
    procs: list[subprocess.Popen[bytes] | None]

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def start(self, i: int) -> None:
        """Start node i on its store (again, after a kill)."""
        self.procs[i] = start_nats_node(
            self.root / f"n{i}",
            self.ports[i],
            f"n{i}",
            self.cluster_ports[i],
            self.cluster_ports,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, name: str) -> int:
        i = int(name.removeprefix("n"))
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[i] = None
        return i


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="sbc-", dir="/tmp"))
    c = Cluster(root, [free_port() for _ in range(3)], [free_port() for _ in range(3)], [None] * 3)
    try:
        for i in range(3):
            c.start(i)
        yield c
    finally:
        for proc in c.procs:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


def _make_files(root: Path, start: int, count: int) -> None:
    data = jpeg_bytes((8, 8))
    for n in range(start, start + count):
        folder = root / f"album-{n % DIRS:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img-{n:05d}.jpg").write_bytes(data)


async def _events_leader(system: System) -> str:
    info = await system.ctx.nc.jetstream().stream_info(system.settings.nats.name("EVENTS"))
    assert info.cluster is not None and info.cluster.leader
    return info.cluster.leader


async def _scan_through_a_leader_kill(
    system: System, cluster: Cluster, admin: dict[str, str], lib: str, expected: int
) -> int:
    """Start a scan, kill the EVENTS leader once assets arrive, wait for the scan to finish;
    returns the killed node's index."""
    url = f"/api/libraries/{lib}/scan"
    before = (await ok(await system.client.get(url, headers=admin))).get("scanId")
    assert (await system.client.post(url, headers=admin)).status_code == 204

    async def under_way() -> bool:
        s = await ok(await system.client.get(url, headers=admin))
        return bool(s.get("scanId") != before and s["filesSeen"] > 200)

    await eventually(under_way, 60, "the scan to be under way")
    leader = await _events_leader(system)
    killed = cluster.kill(leader)
    projected_at_kill = (
        await ok(await system.client.get(f"/api/libraries/{lib}/statistics", headers=admin))
    )["total"]
    assert projected_at_kill < expected, "the kill should land before the scan is projected"
    status: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal status
        r = await system.client.get(url, headers=admin)
        if r.status_code == 503:  # a read during the election: NATS unavailable, try again
            assert r.json()["message"] == "NATS is unavailable for the moment; try again"
            return False
        status = await ok(r)
        return bool(status["scanId"] != before and status["state"] == "finished")

    try:
        await eventually(finished, 180, "the scan to finish after the leader was killed")
    except AssertionError as e:
        raise AssertionError(f"{e}; {await _work_state(system, status)}") from None
    assert status["filesSeen"] == expected, status

    async def projected() -> bool:
        r = await system.client.get(f"/api/libraries/{lib}/statistics", headers=admin)
        return r.status_code == 200 and r.json()["total"] == expected

    await eventually(projected, 60, f"{expected} assets in the read models")
    return killed


async def _work_state(system: System, status: dict[str, Any]) -> str:
    """What the WORK stream and its consumer hold for a scan that did not finish."""
    js = system.ctx.nc.jetstream()
    nats_settings = system.settings.nats
    subject = nats_settings.subject("work", "scan", str(status.get("scanId")))
    info = await js.stream_info(nats_settings.name("WORK"), subjects_filter=subject)
    consumer = await js.consumer_info(
        nats_settings.name("WORK"), nats_settings.name("scanner-dirs")
    )
    return (
        f"status {status}; WORK subject {info.state.subjects}; consumer pending "
        f"{consumer.num_pending}, ack pending {consumer.num_ack_pending}, redelivered "
        f"{consumer.num_redelivered}"
    )


async def test_streams_buckets_and_the_object_store_have_three_replicas(
    cluster: Cluster,
) -> None:
    settings = NatsSettings(url=cluster.url, namespace="r" + uuid.uuid4().hex[:8], embedded=False)
    nc = await connect(settings, "test")
    try:
        assert cluster_size(nc) == 3
        await ensure_streams(nc, settings)
        js = nc.jetstream()
        for stream in ("EVENTS", "WORK", "KV_scans", "KV_heartbeats", "OBJ_thumbs"):
            name = settings.name(stream) if "_" not in stream else stream
            if "_" in stream:
                kind, bucket = stream.split("_", 1)
                name = f"{kind}_{settings.name(bucket)}"
            info = await js.stream_info(name)
            assert info.config.num_replicas == 3, name

        # An operator's stream with other settings: Shoebox leaves them as they are.
        other = NatsSettings(url=cluster.url, namespace="o" + uuid.uuid4().hex[:8])
        await js.add_stream(
            api.StreamConfig(
                name=other.name("EVENTS"),
                subjects=[other.subject("events", ">")],
                num_replicas=3,
                max_bytes=1 << 30,
                duplicate_window=600,
            )
        )
        single = NatsSettings(url=cluster.url, namespace=other.namespace, replicas=1)
        await ensure_streams(nc, single)
        cfg = (await js.stream_info(other.name("EVENTS"))).config
        assert cfg.num_replicas == 3 and cfg.max_bytes == 1 << 30
        assert cfg.duplicate_window == 600 and cfg.allow_direct  # only what Shoebox needs
    finally:
        await nc.close()


async def test_a_scan_is_exact_when_the_stream_leader_dies_and_after_it_returns(
    cluster: Cluster, infra: Infra, tmp_path: Path
) -> None:
    probe = await nats.connect(servers=cluster.url.split(","))
    await eventually(lambda: _js_answers(probe), 60, "the cluster to elect its leaders")
    await probe.close()
    # The session's PostgreSQL, this cluster as NATS.
    clustered = Infra(nats_url=cluster.url, pg_uri=infra.pg_uri, root=infra.root)
    async with open_system(clustered, tmp_path) as system:
        await system.start("scanner", run_scanner)
        media = tmp_path / "media"
        _make_files(media, 0, FILES)
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "owner@example.com", str(media))
        lib = (await external_library(system, admin, user["id"], [str(media)]))["id"]
        events = await system.ctx.nc.jetstream().stream_info(system.settings.nats.name("EVENTS"))
        assert events.config.num_replicas == 3

        killed = await _scan_through_a_leader_kill(system, cluster, admin, lib, FILES)

        # The node comes back on its store and catches up; then the same again with more files.
        cluster.start(killed)

        async def caught_up() -> bool:
            js = system.ctx.nc.jetstream()
            info = await js.stream_info(system.settings.nats.name("EVENTS"))
            peers = info.cluster.replicas if info.cluster else None
            return bool(peers) and len(peers or []) == 2 and all(p.current for p in peers or [])

        await eventually(caught_up, 60, f"node n{killed} to catch up")
        _make_files(media, FILES, FILES // 2)
        total = FILES + FILES // 2
        killed = await _scan_through_a_leader_kill(system, cluster, admin, lib, total)
        cluster.start(killed)
        await eventually(caught_up, 60, f"node n{killed} to catch up again")
        stats = await ok(await system.client.get(f"/api/libraries/{lib}/statistics", headers=admin))
        assert stats["total"] == total


async def _js_answers(nc: nats.NATS) -> bool:
    try:
        await nc.jetstream().account_info()
    except Exception:
        await asyncio.sleep(0.2)  # the cluster is electing; look again
        return False
    return True


async def test_a_service_starts_while_the_first_node_is_down(infra: Infra) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    settings = NatsSettings(url=f"{dead}, {infra.nats_url}", namespace="d" + uuid.uuid4().hex[:8])
    assert settings.servers == [dead, infra.nats_url]
    # Before: it waited 30 s for the first URL's port and raised TimeoutError.
    nc = await connect(settings, "test")
    try:
        assert nc.is_connected
        await ensure_streams(nc, settings)  # a lone server: one replica
        info = await nc.jetstream().stream_info(settings.name("EVENTS"))
        assert info.config.num_replicas == 1
    finally:
        await nc.close()
