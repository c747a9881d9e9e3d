"""Web app benchmark: the timeline's first screen in Chromium over a 100,000-asset library, and
the server time of one month fragment.

Run: `.venv/bin/python bench/web.py [--assets 100000] [--visits 5] [--requests 30]`.

The library is built as bench/api.py builds it (synthetic FileDiscovered + MetadataExtracted
events published straight to the bus, projected with `Projector.run(until_seq=last)`), except
that the thumbnails exist: 16 small JPEGs of 250 px are put in the thumbnail store and the
assets share them (each asset still has its own URL, so the browser fetches one per tile and
the server reads the object store for each, as for real thumbnails).

The app is served by uvicorn on a real port in this process; Debian's Chromium (Playwright,
the browser tests' launcher) opens the timeline signed in. *First screen* is the time from
the navigation's start (`performance.timeOrigin`) until every thumbnail in the viewport is
drawn and no month placeholder is left in it (checked on every DOM change and image load, then
one animation frame), as measured inside the page: cold visits (each in a new browser context,
an empty cache), then revisits in the last context (thumbnails from the cache; the server
counts the thumbnail requests it receives). The floor is a static file of the same app (the
favicon) navigated to in the same browser. The timeline page's HTML and the month fragment
(`GET /photos/months/<month>`, its first MONTH_CHUNK thumbnails) are timed, for the largest
month and the newest one, over sequential keep-alive requests, next to `GET /api/server/ping`
(HTTP + framework, no database). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import msgspec
from PIL import Image

from bench.api import library_events
from bench.common import infra
from services.api.web.photo_pages import MONTH_CHUNK
from services.projector.app import Projector
from shared import events as ev
from shared.bus import EventBus
from tests.helpers import ok, sign_up_admin
from tests.system import open_system, run_projector
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, serve

TARGET_FIRST_SCREEN_MS = 1000.0
THUMBS = 16

# Runs in every page before its own scripts (Playwright's init script, outside the CSP).
FIRST_SCREEN = """
window.__firstScreen = null;
(() => {
  const inView = (el) => { const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; };
  const check = () => {
    if (window.__firstScreen !== null || !document.body) return;
    if ([...document.querySelectorAll('.month-grid.placeholder')].some(inView)) return;
    const imgs = [...document.querySelectorAll('.tile img')].filter(inView);
    if (!imgs.length || !imgs.every((i) => i.complete && i.naturalWidth > 0)) return;
    requestAnimationFrame(() => { if (window.__firstScreen === null)
      window.__firstScreen = { ms: performance.now(), tiles: imgs.length }; });
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true });
  document.addEventListener('load', check, true);
})();
"""


def thumbnail_jpegs() -> list[bytes]:
    out = []
    for i in range(THUMBS):
        img = Image.new("RGB", (250, 188), (40 + i * 12, 120, 220 - i * 10))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def shared_thumbnails(events: list[ev.BaseEvent]) -> list[ev.BaseEvent]:
    """The same events, each asset's renditions one of the THUMBS stored JPEGs."""
    out: list[ev.BaseEvent] = []
    n = 0
    for e in events:
        if isinstance(e, ev.MetadataExtracted):
            key = f"bench/thumb-{n % THUMBS}.jpeg"
            n += 1
            e = msgspec.structs.replace(e, thumbnail_key=key, preview_key=key)
        out.append(e)
    return out


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered):7.1f} ms  p90 {p90:7.1f} ms"


async def first_screen(page: Any, url: str) -> tuple[float, int]:
    await page.goto(url, wait_until="commit")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (found := await page.evaluate("window.__firstScreen")) is None:
        if loop.time() > deadline:
            raise RuntimeError("the first screen was not drawn within 60 s")
        await asyncio.sleep(0.02)  # a poll interval; the figure is measured in the page
    return float(found["ms"]), int(found["tiles"])


async def navigation_floor(page: Any, url: str) -> float:
    await page.goto(url, wait_until="load")
    return float(await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))


async def timed(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    for _ in range(3):
        (await client.get(path)).raise_for_status()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        (await client.get(path)).raise_for_status()
        samples.append((time.perf_counter() - t) * 1000)
    return samples


async def main(n_assets: int, visits: int, n_requests: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"bench/web.py needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    rng = random.Random(7)
    with infra() as inf, tempfile.TemporaryDirectory(prefix="sbweb-", dir="/tmp") as tmp:
        async with open_system(inf, Path(tmp)) as system:
            headers = await sign_up_admin(system)
            token = headers["Authorization"].removeprefix("Bearer ")
            me = await ok(await system.client.get("/api/users/me", headers=headers))
            owner = uuid.UUID(me["id"])

            store = system.ctx.thumbs
            assert store is not None
            for i, data in enumerate(thumbnail_jpegs()):
                await store.put(f"bench/thumb-{i}.jpeg", data)
            await system.stop("projector")
            events, ids = library_events(owner, uuid.uuid4(), n_assets, rng)
            events = shared_thumbnails(events)
            t = time.perf_counter()
            last, _ = await EventBus(system.ctx.nc, system.settings.nats).publish_many(events)
            await Projector(system.ctx.nc, system.ctx.engine, system.settings.nats).run(
                until_seq=last
            )
            print(f"built: {len(ids):,} assets in {time.perf_counter() - t:.1f} s")
            del events
            await system.start("projector", run_projector)
            buckets = await ok(
                await system.client.get(
                    "/api/timeline/buckets", headers=headers, params={"order": "desc"}
                )
            )
            largest = max(buckets, key=lambda b: b["count"])
            newest = buckets[0]
            print(
                f"timeline: {len(buckets)} months; newest {newest['timeBucket'][:7]} "
                f"({newest['count']} assets), largest {largest['timeBucket'][:7]} "
                f"({largest['count']} assets)"
            )

            requests: list[str] = []
            async with serve(system, requests) as url, async_playwright() as pw:
                logging.getLogger().setLevel(logging.WARNING)
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    await browse(browser, url, token, requests, visits)
                finally:
                    await browser.close()
                cookies = {"immich_access_token": token}
                async with httpx.AsyncClient(base_url=url, cookies=cookies) as client:
                    ping = await timed(client, "/api/server/ping", n_requests)
                    print(f"GET /api/server/ping (floor)          {summary(ping)}")
                    samples = await timed(client, "/photos", n_requests)
                    print(
                        f"timeline page (HTML, {len(buckets)} months)  {summary(samples)}  "
                        f"= {statistics.median(samples) / statistics.median(ping):.1f}x the floor"
                    )
                    for label, bucket in (("newest", newest), ("largest", largest)):
                        path = f"/photos/months/{bucket['timeBucket']}"
                        samples = await timed(client, path, n_requests)
                        shown = min(bucket["count"], MONTH_CHUNK)
                        ratio = statistics.median(samples) / statistics.median(ping)
                        print(
                            f"month fragment, {label:7} ({shown} of {bucket['count']:4} tiles) "
                            f"{summary(samples)}  = {ratio:.1f}x the floor"
                        )
    print(f"({os.cpu_count()} cores; browser, app, projector and PostgreSQL on one machine)")


async def signed_in_context(browser: Any, url: str, token: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    host = url.split("//", 1)[1].split(":")[0]
    await context.add_cookies(
        [{"name": "immich_access_token", "value": token, "domain": host, "path": "/"}]
    )
    await context.add_init_script(FIRST_SCREEN)
    return context


async def browse(browser: Any, url: str, token: str, requests: list[str], visits: int) -> None:
    """`visits` cold visits, each in a new browser context (an empty cache), then `visits`
    revisits in the last one."""
    target = TARGET_FIRST_SCREEN_MS
    cold: list[float] = []
    fetched: list[int] = []
    tiles = 0
    context = None
    for _ in range(visits):
        if context is not None:
            await context.close()
        context = await signed_in_context(browser, url, token)
        page = await context.new_page()
        floor = await navigation_floor(page, url + "/static/favicon.svg")
        requests.clear()
        ms, tiles = await first_screen(page, url + "/photos")
        cold.append(ms)
        fetched.append(len([r for r in requests if "/thumbnail" in r]))  # by the first screen
        # Let the page finish what it started (lazy images near the viewport), so the
        # revisits find it all in the cache rather than requests cut off by leaving.
        await page.wait_for_load_state("networkidle")
    assert context is not None
    warm = []
    warm_thumbs = 0
    for _ in range(visits):
        await page.goto(url + "/static/favicon.svg")
        requests.clear()
        ms, _ = await first_screen(page, url + "/photos")
        await page.wait_for_load_state("networkidle")
        warm.append(ms)
        warm_thumbs += len([r for r in requests if "/thumbnail" in r])
    print(f"navigation floor (a static file)       {floor:7.1f} ms (the last cold context)")
    print(
        f"timeline first screen, cold cache      {summary(cold)}  ({tiles} thumbnails in view, "
        f"{statistics.median(fetched):.0f} fetched by then; target < {target:.0f} ms: "
        f"{'met' if statistics.median(cold) < target else 'MISSED'})"
    )
    print(
        f"timeline first screen, revisit         {summary(warm)}  "
        f"({warm_thumbs} thumbnail requests in {visits} revisits; target < {target:.0f} ms: "
        f"{'met' if statistics.median(warm) < target else 'MISSED'})"
    )
    await context.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.assets, args.visits, args.requests))
