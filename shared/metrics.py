"""Prometheus metrics of every service, served on SHOEBOX_METRICS_PORT when it is set."""

from __future__ import annotations

import logging
import os

from prometheus_client import Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

EVENTS_PROJECTED = Counter("shoebox_projector_events_total", "Events applied to the read models")
EVENTS_PASSED_OVER = Counter(
    "shoebox_projector_passed_over_total", "Events recorded in projection_failures"
)
DEAD_LETTERS = Counter(
    "shoebox_consumer_dead_letters_total",
    "Messages a durable consumer gave up on and recorded as dead letters",
    ["consumer"],
)
CHECKPOINT = Gauge("shoebox_projector_checkpoint", "Last stream sequence in the read models")
FOLDERS_SCANNED = Counter("shoebox_scanner_folders_total", "Folders reconciled by scans")
FILES_SEEN = Counter("shoebox_scanner_files_total", "Eligible files listed by scans")
HELPER_FOLDERS = Counter(
    "shoebox_scanner_helper_folders_total",
    "Folders of modified and force scans listed by a scanner's listing helpers",
)
SCAN_PROBLEMS = Counter("shoebox_scanner_problems_total", "Problems recorded by scans")
ACK_TIMEOUTS = Counter(
    "shoebox_scanner_ack_timeouts_total",
    "Acks that did not come back in time (publish: an event's, task: a folder task's double ack)",
    ["what"],
)
PUBLISH_RETRIES = Counter(
    "shoebox_scanner_publish_retries_total",
    "Events sent in a later round because acks timed out (the repeats are de-duplicated)",
)
MOVES_CARRIED = Counter(
    "shoebox_scanner_moved_album_assets_total", "Album members replaced by their moved file"
)
METADATA_FILES = Counter(
    "shoebox_metadata_files_total", "Files read by metadata workers", ["outcome"]
)


def start_metrics(service: str) -> None:
    """Serve /metrics on SHOEBOX_METRICS_PORT (one port per process; unset = off)."""
    port = os.environ.get("SHOEBOX_METRICS_PORT")
    if not port:
        return
    start_http_server(int(port), addr=os.environ.get("SHOEBOX_METRICS_HOST", "127.0.0.1"))
    log.info("%s: metrics on :%s/metrics", service, port)
