"""Recovery bench: each fault of tests/e2e/test_faults.py, and how long until the scan finished.

Run: `.venv/bin/python bench/faults.py [--files 2000]`. Runs the fault tests (the services as
processes on their own nats-server and PostgreSQL; the same exactness checks) on a library of
`--files` small JPEGs and prints, per fault: when it struck after the scan request, how long the
outage lasted, fault -> scan finished (every asset with its metadata and thumbnail), the whole
scan, and the clean scan of the same library measured in the same run (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        report = Path(f.name)
    env = {
        **os.environ,
        "SHOEBOX_FAULTS_REPORT": str(report),
        "SHOEBOX_FAULTS_FILES": str(args.files),
    }
    tests = ROOT / "tests" / "e2e" / "test_faults.py"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", str(tests)]
    code = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
    rows = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    report.unlink()
    base = next((r["scan"] for r in rows if r["fault"].startswith("none")), float("nan"))
    print(f"\n{args.files} files; clean scan (floor) {base:.1f} s")
    print(f"{'fault':<50} {'at':>6} {'outage':>7} {'->done':>7} {'scan':>7} {'x floor':>8}")
    for r in rows:
        if r["fault"].startswith("none"):
            continue
        print(
            f"{r['fault']:<50} {r['fault_at']:>5.1f}s {r['outage']:>6.1f}s "
            f"{r['recovery']:>6.1f}s {r['scan']:>6.1f}s {r['scan'] / base:>7.2f}x"
        )
    if code:
        print(f"(the fault tests failed: pytest exit code {code})")
    sys.exit(code)


if __name__ == "__main__":
    main()
