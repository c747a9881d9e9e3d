"""Browser fixtures: Debian's Chromium through Playwright, launched once, and the real app
(API, projector, scanner, metadata) served over HTTP on a free port for each test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.api.app import build_app
from shared.infra import free_port
from tests.system import Infra, System, eventually, open_system, run_metadata, run_scanner

CHROMIUM = os.environ.get("SHOEBOX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's own browser download cannot work here: the system's Chromium, offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MISSING = (
    f"browser tests need Debian's chromium ({CHROMIUM} is missing): run `apt-get install "
    "chromium` as root (`make test` does it when run as root), or point SHOEBOX_CHROMIUM at one"
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the whole run."""
    if not Path(CHROMIUM).exists():
        pytest.skip(MISSING)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class Web:
    """The running app as a browser sees it, and the system behind it."""

    url: str
    system: System
    media: Path
    browser: Any
    contexts: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Every request the server received, as "METHOD /path?query" (what the browser did not
    # take from its cache).
    requests: list[str] = field(default_factory=list)

    async def page(self, **options: Any) -> Any:
        """A page in a fresh browser context (its own cookies); CSP violations and script
        errors are collected in `problems`.

        One context per person: a page whose context sat idle while others worked was once
        seen never to send its next navigation (headless Chromium 150), so a person who comes
        back later gets a new context and signs in again."""
        context = await self.browser.new_context(
            viewport=options.pop("viewport", {"width": 1280, "height": 800}), **options
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("dialog", lambda d: self.problems.append(f"dialog: {d.message}"))
        return page

    async def shot(self, page: Any, name: str) -> None:
        """docs/screenshots/<name>.png, shown in the README."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # From the top, or the sticky header and the fixed sidebar land mid-page.
        await page.evaluate("window.scrollTo(0, 0)")
        # Every image drawn (a thumbnail that fails to load fails the shot). Evaluated from
        # here: wait_for_function's polling evaluates a string, which the CSP refuses.
        undrawn = (
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src)"
        )

        async def drawn() -> bool:
            return not await page.evaluate(undrawn)

        try:
            await eventually(drawn, 20, f"every image of {name} drawn")
        except AssertionError as e:
            raise AssertionError(f"{e}: {await page.evaluate(undrawn)}") from None
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@contextlib.asynccontextmanager
async def serve(system: System, requests: list[str] | None = None) -> AsyncIterator[str]:
    """The real app (same Context as the system) under uvicorn in this event loop; every
    request it receives is listed in `requests`."""
    port = free_port()
    app = build_app(system.settings, system.ctx)
    seen = requests if requests is not None else []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode()
            seen.append(f"{scope['method']} {scope['path']}" + (f"?{query}" if query else ""))
        await app(scope, receive, send)

    config = uvicorn.Config(
        recording,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, 20, "uvicorn to listen")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def web(browser: Any, infra: Infra, tmp_path: Path) -> AsyncIterator[Web]:
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        await system.start("metadata", run_metadata)
        media = tmp_path / "media"
        media.mkdir()
        requests: list[str] = []
        async with serve(system, requests) as url:
            w = Web(url=url, system=system, media=media, browser=browser, requests=requests)
            try:
                yield w
            finally:
                for context in w.contexts:
                    await context.close()
