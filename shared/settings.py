"""Settings for every Shoebox service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

_NATS_PORT = 4222


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where NATS is, and the names Shoebox uses inside it."""

    url: str = f"nats://127.0.0.1:{_NATS_PORT}"
    # A prefix for every stream, subject, consumer and bucket name, so that several isolated
    # Shoebox systems (tests, staging) can share one NATS server. Empty in production.
    namespace: str = ""
    embedded: bool = True
    port: int = _NATS_PORT
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
    # Files per FilesDiscovered event (a folder's births, decision 0030): fewer, larger events
    # are what makes a first import fast; NATS' payload limit (1 MB) bounds it.
    batch_files: int = 1000
    # Folder tasks one scanner works on at once: a folder costs a dozen round trips to NATS
    # and PostgreSQL, so a first import is bound by how many are in flight (decision 0030).
    folder_concurrency: int = 16
    # Processes forked beside each scanner to list folders of a modified or force scan in
    # parallel (decision 0035); -1: one per core beyond the first, at most three; 0: none.
    listers: int = -1


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
    # The metadata service's CPU niceness (0-19): renditions are background work, so a first
    # import is listed at full speed and the web app stays quick while thumbnails are made.
    metadata_nice: int = 10
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


def _replicas(value: str) -> int:
    return min(5, max(0, int(value)))


def _upper(value: str) -> str:
    return value.upper()


def _seconds(value: str) -> tuple[float, ...]:
    return tuple(float(v) for v in value.split(",") if v.strip())


ENV: dict[str, tuple[tuple[str, ...], Callable[[str], object]]] = {
    "SHOEBOX_DATA": (("data_dir",), str),
    "SHOEBOX_HOST": (("host",), str),
    "SHOEBOX_PORT": (("port",), int),
    "SHOEBOX_UPLOAD_LOCATION": (("upload_location",), str),
    "SHOEBOX_LOG_LEVEL": (("log_level",), _upper),
    "SHOEBOX_RYW_TIMEOUT": (("read_your_writes_timeout",), float),
    "SHOEBOX_METADATA_SETTLE": (("metadata_settle",), float),
    "SHOEBOX_METADATA_NICE": (("metadata_nice",), int),
    "SHOEBOX_MAX_JSON_SIZE": (("max_json_size",), int),
    "SHOEBOX_MAX_UPLOAD_SIZE": (("max_upload_size",), int),
    "SHOEBOX_METADATA_TIMEOUT": (("metadata_timeout",), float),
    "SHOEBOX_METADATA_ACK_WAIT": (("metadata_ack_wait",), float),
    "SHOEBOX_METADATA_MAX_FILE_SIZE": (("metadata_max_file_size",), int),
    "SHOEBOX_MAP_TILE_URL": (("map_tile_url",), str),
    "SHOEBOX_HEALTH_PORT": (("health_port",), int),
    "SHOEBOX_NATS_URL": (("nats", "url"), str),
    "SHOEBOX_NATS_PORT": (("nats", "port"), int),
    "SHOEBOX_NAMESPACE": (("nats", "namespace"), str),
    "SHOEBOX_NATS_REPLICAS": (("nats", "replicas"), _replicas),
    "SHOEBOX_DATABASE_URL": (("db", "url"), str),
    "SHOEBOX_LIBRARY_SCAN_ENABLED": (("scan", "enabled"), _flag),
    "SHOEBOX_LIBRARY_SCAN_CRON": (("scan", "cron_expression"), str),
    "SHOEBOX_LIBRARY_WATCH_ENABLED": (("scan", "watch_enabled"), _flag),
    "SHOEBOX_LIBRARY_WATCH_USE_POLLING": (("scan", "watch_use_polling"), _flag),
    "SHOEBOX_LIBRARY_WATCH_INTERVAL": (("scan", "watch_interval_ms"), int),
    "SHOEBOX_SCAN_ACK_WAIT": (("scan", "work_ack_wait"), float),
    "SHOEBOX_SCAN_BATCH_FILES": (("scan", "batch_files"), int),
    "SHOEBOX_SCAN_CONCURRENCY": (("scan", "folder_concurrency"), int),
    "SHOEBOX_SCAN_LISTERS": (("scan", "listers"), int),
    "SHOEBOX_CONSUMER_MAX_DELIVER": (("consumer", "max_deliver"), int),
    "SHOEBOX_CONSUMER_BACKOFF": (("consumer", "backoff"), _seconds),
}
"""Every SHOEBOX_* variable of Settings: the field it sets and how its text is read. A
variable that is not set leaves the field at its default, written once, on the Struct above."""

DEFAULTS = Settings()


def default_of(variable: str) -> object:
    """The value a SHOEBOX_* variable of ENV has when it is not set."""
    value: object = DEFAULTS
    for part in ENV[variable][0]:
        value = getattr(value, part)
    return value


# Seconds JetStream remembers a Nats-Msg-Id: a fact published again within them is dropped.
DUPLICATE_WINDOW = 120.0
# A redelivery must come (and its fact be republished) well inside that window, nats-server
# restarts included: a lost ack then never stores the same fact twice.
MAX_ACK_WAIT = DUPLICATE_WINDOW / 2


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from SHOEBOX_* environment variables (ENV; README lists them)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = msgspec.to_builtins(DEFAULTS)
    for variable, (path, parse) in ENV.items():
        if variable in env:
            *parents, leaf = path
            target = raw
            for part in parents:
                target = target[part]
            target[leaf] = parse(env[variable])
    # Without a NATS or PostgreSQL URL the services start their own (embedded) servers.
    raw["nats"]["embedded"] = not env.get("SHOEBOX_NATS_URL")
    if raw["nats"]["embedded"]:
        raw["nats"]["url"] = f"nats://127.0.0.1:{raw['nats']['port']}"
    raw["db"]["embedded"] = not raw["db"]["url"]
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
