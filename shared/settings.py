"""Settings for every Shoebox service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where NATS is, and the names Shoebox uses inside it."""

    url: str = "nats://127.0.0.1:4222"
    # A prefix for every stream, subject, consumer and bucket name, so that several isolated
    # Shoebox systems (tests, staging) can share one NATS server. Empty in production.
    namespace: str = ""
    embedded: bool = True
    port: int = 4222
    # Replicas of every stream, KV bucket and object store Shoebox creates; 0 = from the size
    # of the cluster the server reports (3 on a cluster of 3 or more, else 1). At most 5.
    replicas: int = 0

    @property
    def servers(self) -> list[str]:
        """The NATS URLs, one per cluster node (SHOEBOX_NATS_URL is comma-separated)."""
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def subject(self, *parts: str) -> str:
        """A subject under this namespace: subject("events", "user", id)."""
        name = ".".join(parts)
        return f"{self.namespace}.{name}" if self.namespace else name

    def name(self, base: str) -> str:
        """A stream / consumer / bucket name under this namespace (no dots allowed there)."""
        return f"{self.namespace}_{base}" if self.namespace else base


class DbSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where PostgreSQL is. An empty url means the embedded pgserver in the data folder."""

    url: str = ""
    embedded: bool = True


class ScanSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduled scans and watching (Immich's `library.scan.*` and `library.watch.*` keys)."""

    enabled: bool = True
    cron_expression: str = "0 0 * * *"
    watch_enabled: bool = False
    watch_use_polling: bool = False
    watch_interval_ms: int = 10000
    # Seconds before an unacknowledged folder task of a dead scanner goes to another replica.
    work_ack_wait: float = 30.0


class ConsumerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds of every durable consumer (shared/consumer.py, decision 0024)."""

    # Deliveries after which a message that fails for a reason of its own is recorded as a
    # dead letter instead of tried again (SHOEBOX_CONSUMER_MAX_DELIVER). Outages never count.
    max_deliver: int = 5
    # Seconds before the next try after the 1st, 2nd, ... failure; the last one repeats
    # (SHOEBOX_CONSUMER_BACKOFF, comma-separated).
    backoff: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0)

    def delay(self, deliveries: int) -> float:
        """Seconds before the try after failed delivery number `deliveries` (1-based)."""
        return self.backoff[min(max(deliveries, 1), len(self.backoff)) - 1]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a service needs to know about its world."""

    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: int = 2283
    upload_location: str = ""
    log_level: str = "INFO"
    read_your_writes_timeout: float = 10.0
    # A file that cannot be read and was modified less than this many seconds ago is probably
    # still being copied: the metadata service tries it again later instead of recording it.
    metadata_settle: float = 30.0
    # Request bodies: JSON (every route but the upload) is small; an upload is streamed to disk
    # and bounded only to stop a runaway client (Immich documents `client_max_body_size 50000M`
    # for its reverse proxy; this is the same 50,000 MiB).
    max_json_size: int = 1 << 20
    max_upload_size: int = 50_000 << 20
    # Seconds a metadata worker process may spend on one file (plus one second per 100 MB of
    # it) before it is killed, replaced, and the file recorded as failed.
    metadata_timeout: float = 300.0
    # Seconds before a file given to a metadata replica that died comes back to another one (a
    # file being read is reported in progress meanwhile). Must stay below the EVENTS stream's
    # duplicate window (120 s), so a fact republished after a lost ack is still dropped.
    metadata_ack_wait: float = 30.0
    # Bytes; a bigger file is recorded as failed without being read. 64 GiB holds an hour and a
    # half of 4K video at 100 Mbit/s; reading it at 100 MB/s fits the time bound above.
    metadata_max_file_size: int = 64 << 30
    # The web app's map tiles, as Leaflet's URL template ({z}/{x}/{y}); empty = no tiles, the
    # photos on a plain background (nothing outside this server is reachable by default).
    map_tile_url: str = ""
    # Where a worker (projector, scanner, metadata, watcher) serves GET /livez and /readyz;
    # 0 = none. The api serves them on its own port.
    health_port: int = 8081
    nats: NatsSettings = NatsSettings()
    db: DbSettings = DbSettings()
    scan: ScanSettings = ScanSettings()
    consumer: ConsumerSettings = ConsumerSettings()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def upload_path(self) -> Path:
        return (
            Path(self.upload_location).resolve()
            if self.upload_location
            else (self.data_path / "upload")
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _seconds(value: str) -> tuple[float, ...]:
    return tuple(float(v) for v in value.split(",") if v.strip())


# Seconds JetStream remembers a Nats-Msg-Id: a fact published again within them is dropped.
DUPLICATE_WINDOW = 120.0
# A redelivery must come (and its fact be republished) well inside that window, nats-server
# restarts included: a lost ack then never stores the same fact twice.
MAX_ACK_WAIT = DUPLICATE_WINDOW / 2


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from SHOEBOX_* environment variables (see README for the list)."""
    env = os.environ if env is None else env
    nats_url = env.get("SHOEBOX_NATS_URL", "")
    db_url = env.get("SHOEBOX_DATABASE_URL", "")
    nats_port = int(env.get("SHOEBOX_NATS_PORT", "4222"))
    raw = {
        "data_dir": env.get("SHOEBOX_DATA", "./data"),
        "host": env.get("SHOEBOX_HOST", "127.0.0.1"),
        "port": int(env.get("SHOEBOX_PORT", "2283")),
        "upload_location": env.get("SHOEBOX_UPLOAD_LOCATION", ""),
        "log_level": env.get("SHOEBOX_LOG_LEVEL", "INFO").upper(),
        "read_your_writes_timeout": float(env.get("SHOEBOX_RYW_TIMEOUT", "10")),
        "metadata_settle": float(env.get("SHOEBOX_METADATA_SETTLE", "30")),
        "max_json_size": int(env.get("SHOEBOX_MAX_JSON_SIZE", str(1 << 20))),
        "max_upload_size": int(env.get("SHOEBOX_MAX_UPLOAD_SIZE", str(50_000 << 20))),
        "metadata_timeout": float(env.get("SHOEBOX_METADATA_TIMEOUT", "300")),
        "metadata_ack_wait": float(env.get("SHOEBOX_METADATA_ACK_WAIT", "30")),
        "metadata_max_file_size": int(env.get("SHOEBOX_METADATA_MAX_FILE_SIZE", str(64 << 30))),
        "map_tile_url": env.get("SHOEBOX_MAP_TILE_URL", ""),
        "health_port": int(env.get("SHOEBOX_HEALTH_PORT", "8081")),
        "nats": {
            "url": nats_url or f"nats://127.0.0.1:{nats_port}",
            "namespace": env.get("SHOEBOX_NAMESPACE", ""),
            "embedded": not nats_url,
            "port": nats_port,
            "replicas": min(5, max(0, int(env.get("SHOEBOX_NATS_REPLICAS", "0")))),
        },
        "db": {"url": db_url, "embedded": not db_url},
        "scan": {
            "enabled": _flag(env.get("SHOEBOX_LIBRARY_SCAN_ENABLED", "true")),
            "cron_expression": env.get("SHOEBOX_LIBRARY_SCAN_CRON", "0 0 * * *"),
            "watch_enabled": _flag(env.get("SHOEBOX_LIBRARY_WATCH_ENABLED", "false")),
            "watch_use_polling": _flag(env.get("SHOEBOX_LIBRARY_WATCH_USE_POLLING", "false")),
            "watch_interval_ms": int(env.get("SHOEBOX_LIBRARY_WATCH_INTERVAL", "10000")),
            "work_ack_wait": float(env.get("SHOEBOX_SCAN_ACK_WAIT", "30")),
        },
        # Only what is set: the defaults are ConsumerSettings' own.
        "consumer": {
            key: convert(env[name])
            for key, name, convert in (
                ("max_deliver", "SHOEBOX_CONSUMER_MAX_DELIVER", int),
                ("backoff", "SHOEBOX_CONSUMER_BACKOFF", _seconds),
            )
            if env.get(name)
        },
    }
    settings = msgspec.convert(raw, Settings)
    if settings.consumer.max_deliver < 1 or not settings.consumer.backoff:
        raise ValueError(
            "SHOEBOX_CONSUMER_MAX_DELIVER must be at least 1 and SHOEBOX_CONSUMER_BACKOFF "
            "name at least one delay"
        )
    if not 1 <= settings.metadata_ack_wait <= MAX_ACK_WAIT:
        raise ValueError(
            f"SHOEBOX_METADATA_ACK_WAIT must be between 1 and {MAX_ACK_WAIT:.0f} seconds "
            f"(half the {DUPLICATE_WINDOW:.0f} s duplicate window), not "
            f"{settings.metadata_ack_wait:g}"
        )
    return settings
