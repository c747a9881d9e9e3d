"""The web app in a real browser: the guide's walkthrough, escaping, CSRF and another user's
library, with a screenshot of every page under docs/screenshots/."""

from __future__ import annotations

import io
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.async_api import expect

from services.api.web import photo_pages
from services.api.web.common import PROGRESS_QUIET
from shared.scanprogress import update_progress
from tests.helpers import ADMIN, assets_read, login, ok
from tests.system import run_scanner
from tests.web.conftest import Web

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
ALICE = {"name": "Alice", "email": "alice@example.com", "password": "alice-secret"}


def photo(
    path: Path,
    taken: datetime,
    hue: int,
    size: tuple[int, int] = (600, 400),
    place: tuple[float, float] | None = None,
    camera: tuple[str, str, int] | None = None,
) -> None:
    """A small JPEG that looks like a landscape, with its capture date (and place, and the
    camera's make, model and ISO) in EXIF."""
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line(
            [(0, y), (w, y)],
            fill=(min(255, int(90 + 120 * t + hue / 2)), int(140 + 60 * t), int(230 - 90 * t)),
        )
    draw.ellipse([w * 0.65, h * 0.12, w * 0.8, h * 0.12 + w * 0.15], fill=(255, 236, 170))
    draw.polygon(
        [(0, h), (w * 0.3, h * 0.45), (w * 0.55, h * 0.8), (w * 0.8, h * 0.5), (w, h)],
        fill=((40 + hue) % 256, 90, 70),
    )
    exif = img.getexif()
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if camera is not None:
        exif[0x010F], exif[0x0110], exif.get_ifd(0x8769)[0x8827] = camera
    if place is not None:
        gps = exif.get_ifd(0x8825)
        lat, lon = place
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    stamp = taken.timestamp()
    os.utime(path, (stamp, stamp))


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round(((value - degrees) * 60 - minutes) * 60, 2)


def video(path: Path, taken: datetime) -> None:
    """A one-second MP4 (a sunset that reddens), dated `taken` in its container."""
    import av

    codec = next(c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        container.metadata["creation_time"] = taken.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"  # type: ignore[union-attr]
        for index in range(10):
            image = Image.new("RGB", (320, 240), (200 + 5 * index, 120 - 8 * index, 60))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode():  # type: ignore[union-attr]
            container.mux(packet)


def archive(root: Path) -> tuple[Path, Path]:
    """The second library's two import paths: old pictures, and videos."""
    old, videos = root / "Old pictures", root / "Videos"
    photo(old / "1998" / "beach.jpg", datetime(1998, 7, 14, 16, 0), 60)
    photo(old / "1998" / "garden.jpg", datetime(1998, 8, 2, 10, 0), 110, (400, 600))
    video(videos / "sunset.mp4", datetime(2023, 6, 21, 21, 30))
    return old, videos


def trip(root: Path) -> Path:
    """Christmas photos, a Raw/ folder the library excludes, and a hostile file name."""
    folder = root / "Christmas"
    photo(folder / "tree.jpg", datetime(2024, 12, 24, 18, 0), 0, place=(46.5405, 7.9610))
    photo(folder / "dinner.jpg", datetime(2024, 12, 24, 20, 30), 40, (400, 600))
    photo(folder / "snow.jpg", datetime(2024, 12, 26, 11, 0), 90, (800, 400), (46.5772, 7.9042))
    photo(folder / "day2" / "sledge.jpg", datetime(2024, 12, 27, 14, 0), 130, place=(47.37, 8.54))
    photo(folder / "autumn.jpg", datetime(2024, 11, 2, 15, 0), 200, (500, 500))
    photo(folder / HOSTILE, datetime(2024, 11, 3, 9, 0), 160, camera=("Canon", "EOS R6", 400))
    photo(folder / "Raw" / "tree-raw.jpg", datetime(2024, 12, 24, 18, 1), 10)
    photo(folder / "Raw" / "deep" / "snow-raw.jpg", datetime(2024, 12, 26, 11, 1), 20)
    return folder


async def sign_in(page: Any, web: Web, email: str, password: str) -> None:
    await page.goto(web.url + "/auth/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(web.url + "/photos")


async def test_walkthrough_from_first_run_to_the_trip_in_the_timeline(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = trip(web.media)

    # First run: the first visit offers the admin sign-up.
    admin = await web.page()
    await admin.goto(web.url + "/")
    await expect(admin).to_have_url(web.url + "/auth/sign-up")
    await web.shot(admin, "sign-up")
    await admin.get_by_label("Name").fill(ADMIN["name"])
    await admin.get_by_label("Email").fill(ADMIN["email"])
    await admin.get_by_label("Password").fill(ADMIN["password"])
    await admin.get_by_role("button", name="Sign up as administrator").click()
    await expect(admin).to_have_url(web.url + "/admin/users")

    # The admin creates Alice, then sets her external path.
    new_user = admin.locator("form[action='/admin/users']")
    await new_user.get_by_label("Name").fill(ALICE["name"])
    await new_user.get_by_label("Email").fill(ALICE["email"])
    await new_user.get_by_label("Password").fill(ALICE["password"])
    await new_user.get_by_role("button", name="Create user").click()
    row = admin.locator(f"li[data-email='{ALICE['email']}']")
    await expect(row).to_be_visible()
    await row.get_by_label(f"External path of {ALICE['email']}").fill(str(web.media))
    await row.get_by_role("button", name="Save").click()
    await expect(row.get_by_label(f"External path of {ALICE['email']}")).to_have_value(
        str(web.media)
    )
    await web.shot(admin, "admin-users")

    # Alice signs in on her own browser.
    alice = await web.page()
    await alice.goto(web.url + "/")
    await expect(alice).to_have_url(web.url + "/auth/login")
    await web.shot(alice, "sign-in")
    await sign_in(alice, web, ALICE["email"], ALICE["password"])
    await expect(alice.get_by_text("No photos yet")).to_be_visible()

    # She creates an external library and renames it.
    await alice.get_by_role("navigation").get_by_role("link", name="Libraries").click()
    await alice.get_by_label("Name").fill("Trip")
    await alice.get_by_role("button", name="Create library").click()
    await expect(alice.get_by_role("heading", name="Trip")).to_be_visible()
    library_url = alice.url
    await alice.get_by_label("Library name").fill("Christmas Trip")
    await alice.get_by_role("button", name="Rename").click()
    await expect(alice.get_by_role("heading", name="Christmas Trip")).to_be_visible()

    # An import path, with the live validation message beside each path as it is typed.
    await alice.get_by_label("Import path 1").fill("/etc")
    await expect(alice.locator("#path-msg-1 .invalid")).to_be_visible()
    await alice.get_by_label("Import path 1").fill(str(folder) + "-nope")
    await expect(alice.locator("#path-msg-1 .invalid")).to_contain_text("ENOENT")
    await alice.get_by_label("Import path 1").fill(str(folder))
    await expect(alice.locator("#path-msg-1 .valid")).to_be_visible()
    patterns = alice.locator("input[name=exclusionPattern]")
    await patterns.last.fill("**/Raw/**")
    await alice.get_by_role("button", name="Save folders").click()
    await expect(alice.get_by_label("Import path 1")).to_have_value(str(folder))
    await expect(alice.locator("#path-msg-1 .valid")).to_be_visible()
    await expect(patterns.nth(await patterns.count() - 2)).to_have_value("**/Raw/**")

    # Scan, and watch the progress bar reach the end.
    await alice.get_by_role("button", name="Scan new files").click()
    status = alice.locator(".scan-status")
    await expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    bar = alice.locator("progress.scan-progress")
    assert await bar.get_attribute("value") == await bar.get_attribute("max")
    await expect(status).to_contain_text("6 new")
    await web.shot(alice, "library")

    # The trip's photos are in the timeline, none from Raw/.
    headers = await login(web.system, ALICE["email"], ALICE["password"])
    library_id = library_url.rsplit("/", 1)[-1]
    items = await assets_read(web.system, headers, library_id, 6)
    assert not [a for a in items if "/Raw/" in a["originalPath"]]
    await alice.get_by_role("navigation").get_by_role("link", name="Photos").click()
    await expect(alice.locator(".month")).to_have_count(2)
    await expect(alice.locator(".month-title").first).to_contain_text("December 2024")
    tiles = alice.locator(".tile")
    await expect(tiles).to_have_count(6)
    ids = {await t.get_attribute("data-id") for t in await tiles.all()}
    assert ids == {a["id"] for a in items}
    await expect(alice.locator(".tile img").last).to_have_js_property("complete", True)
    await web.shot(alice, "timeline")

    # Thumbnails are cached for good (their URL names the rendition's version): a second
    # visit asks the server for none of them.
    src = await alice.locator(".tile img").first.get_attribute("src")
    assert src is not None and "c=" in src
    thumb = await alice.request.get(web.url + src)
    assert thumb.status == 200 and "immutable" in thumb.headers["cache-control"]
    etag = thumb.headers["etag"]
    again = await alice.request.get(web.url + src, headers={"if-none-match": etag})
    assert again.status == 304 and not await again.body()
    await alice.get_by_role("navigation").get_by_role("link", name="Albums").click()
    web.requests.clear()
    await alice.get_by_role("navigation").get_by_role("link", name="Photos").click()
    await expect(tiles).to_have_count(6)
    await web.shot(alice, "timeline")  # every thumbnail drawn again
    assert "GET /photos" in web.requests, web.requests
    assert not [r for r in web.requests if "/thumbnail" in r], web.requests

    # Select two photos and put them in a new album.
    bar = alice.locator("form.selection-bar")
    await expect(bar).to_be_hidden()
    picks = alice.locator(".tile .pick input")
    await picks.nth(0).check()
    await picks.nth(1).check()
    await expect(bar).to_be_visible()
    await alice.get_by_label("New album name").fill("Best of the trip")
    await web.shot(alice, "timeline-selection")
    await alice.get_by_role("button", name="Add to new album").click()
    await expect(alice.get_by_role("heading", name="Best of the trip")).to_be_visible()
    await expect(alice.locator(".tile")).to_have_count(2)
    await expect(alice.locator(".tile img").last).to_have_js_property("complete", True)
    await web.shot(alice, "album")
    await alice.get_by_label("Album name").fill("Best of Christmas")
    await alice.get_by_role("button", name="Rename").click()
    await expect(alice.get_by_role("heading", name="Best of Christmas")).to_be_visible()
    album_url = alice.url

    # A third photo into the existing album, then one taken out again.
    await alice.get_by_role("navigation").get_by_role("link", name="Photos").click()
    await alice.locator(".tile .pick input").nth(2).check()
    await alice.get_by_role("button", name="Add to “Best of Christmas”").click()
    await expect(alice).to_have_url(album_url)
    await expect(alice.locator(".tile")).to_have_count(3)
    removed = await alice.locator(".tile").first.get_attribute("data-id")
    await alice.locator(".tile .pick input").first.check()
    await alice.get_by_role("button", name="Remove from album").click()
    await expect(alice.locator(".tile")).to_have_count(2)
    await expect(alice.locator(f".tile[data-id='{removed}']")).to_have_count(0)
    await alice.get_by_role("navigation").get_by_role("link", name="Albums").click()
    await expect(alice.get_by_role("link", name="Best of Christmas")).to_be_visible()
    await expect(alice.locator(".album")).to_contain_text("2 items")
    await web.shot(alice, "albums")

    # An album deleted after its confirmation; its photos stay.
    await alice.get_by_placeholder("Album name").fill("Scratch")
    await alice.get_by_role("button", name="Create album").click()
    await expect(alice.get_by_role("heading", name="Scratch")).to_be_visible()
    await alice.get_by_text("Delete album…").click()
    await expect(alice.locator(".album-actions")).to_contain_text("stay in your timeline")
    await alice.get_by_role("button", name="Delete album").click()
    await expect(alice).to_have_url(web.url + "/albums")
    await expect(alice.get_by_role("link", name="Scratch")).to_have_count(0)
    await expect(alice.locator(".album")).to_have_count(1)

    # Folders: the import path, its subfolder, no Raw/.
    await alice.get_by_role("navigation").get_by_role("link", name="Folders").click()
    await alice.get_by_role("link", name=str(folder)).click()
    await expect(alice.locator(".subfolders a")).to_have_text(["day2"])
    await expect(alice.locator(".tile")).to_have_count(5)
    await web.shot(alice, "folders")
    await alice.get_by_role("link", name="day2").click()
    await expect(alice.locator(".folder-path")).to_contain_text("day2")
    await expect(alice.locator(".tile")).to_have_count(1)
    # A photo copied into that folder: scanning only this folder finds it.
    photo(folder / "day2" / "sledge-2.jpg", datetime(2024, 12, 27, 15, 0), 150)
    day2 = alice.url
    await alice.get_by_role("button", name="Scan this folder").click()
    await expect(alice).to_have_url(library_url)
    await expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    await expect(status).to_contain_text("1 new")
    await expect(status).to_contain_text("2 files seen")  # that folder only
    await alice.goto(day2)
    await expect(alice.locator(".tile")).to_have_count(2)
    await expect(alice.locator(".tile img").last).to_have_js_property("complete", True)

    # The hostile file name renders as text.
    hostile = next(a for a in items if a["originalFileName"] == HOSTILE)
    await alice.goto(f"{web.url}/photos/{hostile['id']}")
    await expect(alice.locator(".file-name")).to_have_text(HOSTILE)
    assert await alice.locator("img[src='x']").count() == 0
    # Its EXIF, as the asset view shows it.
    info = alice.locator(".asset-info")
    await expect(info).to_contain_text("600 \u00d7 400")
    await expect(info).to_contain_text("Canon EOS R6")
    await expect(info).to_contain_text("ISO 400")
    await expect(info).to_contain_text("03 Nov 2024, 09:00")
    await expect(info).to_contain_text(str(folder / HOSTILE))
    await expect(info).to_contain_text("Christmas Trip")
    await web.shot(alice, "asset")
    # Older and newer by keyboard, in the timeline's order (it is the oldest but one).
    await alice.keyboard.press("ArrowRight")
    await expect(alice.locator(".file-name")).to_have_text("autumn.jpg")
    await expect(alice.locator("a[rel=next]")).to_have_count(0)
    await alice.keyboard.press("ArrowLeft")
    await expect(alice.locator(".file-name")).to_have_text(HOSTILE)
    # Full size: the original filling the window, stepped through by the same keys.
    await alice.keyboard.press("f")
    await expect(alice).to_have_url(f"{web.url}/photos/{hostile['id']}/full")
    full = alice.locator("img.full-image")
    await expect(full).to_have_attribute("src", f"/api/assets/{hostile['id']}/original")
    await expect(full).to_have_js_property("naturalWidth", 600)
    await web.shot(alice, "asset-full")
    await alice.keyboard.press("ArrowRight")
    await expect(alice.locator(".file-name")).to_have_text("autumn.jpg")
    await expect(alice.locator("img.full-image")).to_have_js_property("naturalWidth", 500)
    await alice.keyboard.press("Escape")
    await expect(alice.locator("h1.file-name")).to_have_text("autumn.jpg")
    await alice.keyboard.press("Escape")
    await expect(alice).to_have_url(web.url + "/photos")

    # Light and dark, desktop and phone.
    dark = await web.page(color_scheme="dark")
    await sign_in(dark, web, ALICE["email"], ALICE["password"])
    await expect(dark.locator(".tile")).to_have_count(7)
    await expect(dark.locator(".tile img").last).to_have_js_property("complete", True)
    await web.shot(dark, "timeline-dark")
    background = "getComputedStyle(document.documentElement).backgroundColor"
    assert await dark.evaluate(background) == "rgb(15, 17, 21)"
    # The theme button: light whatever the system says, then dark, then the system's again.
    html = dark.locator("html")
    await dark.get_by_role("button", name="Theme: system, switch to light").click()
    await expect(html).to_have_attribute("data-theme", "light")
    assert await dark.evaluate(background) == "rgb(246, 247, 249)"
    await dark.get_by_role("button", name="Theme: light, switch to dark").click()
    await expect(html).to_have_attribute("data-theme", "dark")
    await dark.goto(f"{web.url}/photos/{hostile['id']}")
    await expect(html).to_have_attribute("data-theme", "dark")  # kept across pages
    await dark.get_by_role("button", name="Theme: dark, switch to system").click()
    await expect(dark).to_have_url(f"{web.url}/photos/{hostile['id']}")
    await expect(html).not_to_have_attribute("data-theme", "dark")
    assert await dark.evaluate(background) == "rgb(15, 17, 21)"
    phone = await web.page(viewport={"width": 390, "height": 844}, is_mobile=True)
    await sign_in(phone, web, ALICE["email"], ALICE["password"])
    await expect(phone.locator(".tile")).to_have_count(7)
    await expect(phone.locator(".tile img").last).to_have_js_property("complete", True)
    await web.shot(phone, "timeline-phone")
    await phone.goto(f"{web.url}/photos/{hostile['id']}")
    await expect(phone.locator(".preview img")).to_have_js_property("complete", True)
    await web.shot(phone, "asset-phone")

    # The map: her three photos with a place, on a plain background (no tile server here).
    await alice.get_by_role("navigation").get_by_role("link", name="Map").click()
    await expect(alice.locator(".map-note")).to_contain_text("SHOEBOX_MAP_TILE_URL")
    await expect(alice.locator(".map-count")).to_have_text("3 photos with a place")
    await expect(alice.locator(".leaflet-marker-icon").first).to_be_visible()
    # The two photos a few kilometres apart in the Bernese Oberland are one cluster.
    await expect(alice.locator(".marker-cluster")).to_have_text("2")
    await web.shot(alice, "map")

    # A second library with two import paths, old pictures and videos, scanned: it shows up
    # in the timeline too, the video with its player.
    old, videos = archive(web.media)
    await alice.get_by_role("navigation").get_by_role("link", name="Libraries").click()
    await alice.get_by_label("Name").fill("Family archive")
    await alice.get_by_role("button", name="Create library").click()
    await expect(alice.get_by_role("heading", name="Family archive")).to_be_visible()
    await alice.get_by_label("Import path 1").fill(str(old))
    await expect(alice.locator("#path-msg-1 .valid")).to_be_visible()
    await alice.get_by_role("button", name="Save folders").click()
    await alice.get_by_label("Import path 2").fill(str(videos))
    await expect(alice.locator("#path-msg-2 .valid")).to_be_visible()
    await alice.get_by_role("button", name="Save folders").click()
    await expect(alice.get_by_label("Import path 2")).to_have_value(str(videos))
    await alice.get_by_role("button", name="Scan new files").click()
    await expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    await expect(status).to_contain_text("3 new")
    archive_id = alice.url.rsplit("/", 1)[-1]
    found = await assets_read(web.system, headers, archive_id, 3)
    # Only the newest photo comes with the page now, the rest as it scrolls into view, two
    # photos a fragment (as a month of thousands comes in parts).
    monkeypatch.setattr(photo_pages, "FIRST_SCREEN_TILES", 1)
    monkeypatch.setattr(photo_pages, "MONTH_CHUNK", 2)
    web.requests.clear()
    await alice.get_by_role("navigation").get_by_role("link", name="Photos").click()
    await expect(alice.locator(".month-title")).to_contain_text(
        ["December 2024", "November 2024", "June 2023", "August 1998", "July 1998"]
    )
    months = alice.locator(".month")
    for index in range(await months.count()):  # each month loads as it scrolls into view
        await months.nth(index).scroll_into_view_if_needed()
        await expect(months.nth(index).locator(".tile").first).to_be_visible()
    await expect(alice.locator(".tile")).to_have_count(10)
    fragments = [r for r in web.requests if r.startswith("GET /photos/months/")]
    # December's rest in two parts, then four months (one in one part each).
    assert len(fragments) == 6, web.requests
    assert [r for r in fragments if r.endswith("?skip=1")], fragments
    assert [r for r in fragments if r.endswith("?skip=3")], fragments
    clip = next(a for a in found if a["type"] == "VIDEO")
    await expect(alice.locator(f".tile[data-id='{clip['id']}'] .video-badge")).to_be_visible()
    await alice.goto(f"{web.url}/photos/{clip['id']}")
    player = alice.locator("video.player")
    await expect(player).to_have_attribute("src", f"/api/assets/{clip['id']}/original")
    await expect(alice.locator(".asset-info .duration")).to_contain_text("0:00:01")

    # The admin sees every library (on a fresh page: see tests/web/conftest.py).
    admin = await web.page()
    await sign_in(admin, web, ADMIN["email"], ADMIN["password"])
    await admin.goto(web.url + "/libraries")
    await expect(admin.get_by_role("link", name="Christmas Trip")).to_be_visible()
    await web.shot(admin, "libraries")

    assert not web.problems, web.problems  # no CSP violation, script error or dialog


async def test_a_form_post_without_csrf_token_is_refused(web: Web) -> None:
    page = await web.page()
    await page.goto(web.url + "/")
    await page.get_by_label("Name").fill(ADMIN["name"])
    await page.get_by_label("Email").fill(ADMIN["email"])
    await page.get_by_label("Password").fill(ADMIN["password"])
    await page.get_by_role("button", name="Sign up as administrator").click()
    await expect(page).to_have_url(web.url + "/admin/users")
    # Same cookies as the page (session and CSRF cookie), but no token: refused.
    refused = await page.request.post(
        web.url + "/admin/users",
        form={"name": "Mallory", "email": "mallory@example.com", "password": "pw-mallory"},
    )
    assert refused.status == 403
    await page.reload()
    await expect(page.get_by_text("mallory@example.com")).to_have_count(0)
    # The API is Immich's and takes no CSRF token.
    api = await page.request.get(web.url + "/api/users/me")
    assert api.status == 200


async def test_a_user_cannot_open_another_users_library(web: Web) -> None:
    client = web.system.client
    await ok(await client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    admin = await login(web.system, ADMIN["email"], ADMIN["password"])
    body = {"email": ALICE["email"], "password": ALICE["password"], "name": ALICE["name"]}
    await ok(await client.post("/api/admin/users", json=body, headers=admin), 201)
    libraries = await ok(await client.get("/api/libraries", headers=admin))
    admins = libraries[0]["id"]
    page = await web.page()
    await sign_in(page, web, ALICE["email"], ALICE["password"])
    response = await page.goto(f"{web.url}/libraries/{admins}")
    assert response is not None and response.status == 404
    await expect(page.get_by_text("Library not found")).to_be_visible()
    response = await page.goto(f"{web.url}/libraries/{admins}/progress")
    assert response is not None and response.status == 404
    response = await page.goto(f"{web.url}/admin/users")
    assert response is not None and response.status == 403

    # Nor another user's photo (the admin's upload), in any of its views.
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    form = {
        "deviceAssetId": "red",
        "deviceId": "pytest",
        "fileCreatedAt": "2024-05-01T10:00:00.000Z",
        "fileModifiedAt": "2024-05-01T10:00:00.000Z",
    }
    files = {"assetData": ("red.jpg", buf.getvalue(), "image/jpeg")}
    upload = await client.post("/api/assets", data=form, files=files, headers=admin)
    theirs = (await ok(upload, 201))["id"]
    for view in ("", "/full"):
        response = await page.goto(f"{web.url}/photos/{theirs}{view}")
        assert response is not None and response.status == 404
        await expect(page.get_by_text("Photo not found")).to_be_visible()
    thumb = await page.request.get(f"{web.url}/api/assets/{theirs}/thumbnail")
    assert thumb.status in (400, 403, 404)


async def test_offline_files_are_marked_counted_removed_and_a_library_deleted(web: Web) -> None:
    folder = trip(web.media)
    client = web.system.client
    await ok(await client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    admin = await login(web.system, ADMIN["email"], ADMIN["password"])
    body = {**ALICE, "externalPath": str(web.media)}
    alice_dto = await ok(await client.post("/api/admin/users", json=body, headers=admin), 201)
    page = await web.page()
    await sign_in(page, web, ALICE["email"], ALICE["password"])
    create = {
        "ownerId": alice_dto["id"],
        "name": "Christmas Trip",
        "importPaths": [str(folder)],
        "exclusionPatterns": ["**/Raw/**"],
    }
    library = await ok(await client.post("/api/libraries", json=create, headers=admin), 201)
    await page.goto(f"{web.url}/libraries/{library['id']}")
    await page.get_by_role("button", name="Scan new files").click()
    status = page.locator(".scan-status")
    await expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    await expect(status.locator(".asset-count")).to_have_text("6")
    # The progress stream of a finished scan: its last state, then `done` (EventSource closes).
    stream = await page.request.get(f"{web.url}/libraries/{library['id']}/progress")
    assert stream.headers["content-type"].startswith("text/event-stream")
    text = await stream.text()
    assert "event: progress" in text and 'data-state="finished"' in text
    assert text.index("event: done") > text.rindex("event: progress")

    # A photo goes missing: the next scan takes it offline, with its reason.
    (folder / "snow.jpg").unlink()
    await page.get_by_role("button", name="Scan modified files").click()
    await expect(status.locator(".offline-count")).to_have_text("1", timeout=30_000)
    await expect(page.locator(".offline-list")).to_contain_text("snow.jpg")
    await expect(page.locator(".offline-list")).to_contain_text("deleted")
    await page.get_by_text("Remove 1 offline asset…").click()
    await expect(page.locator(".removable-count")).to_have_text("1")
    await web.shot(page, "library-offline")

    # The timeline marks it (another window of hers).
    viewer = await web.page()
    await sign_in(viewer, web, ALICE["email"], ALICE["password"])
    await expect(viewer.locator(".tile")).to_have_count(6)
    await expect(viewer.locator(".tile.offline")).to_have_count(1)
    await expect(viewer.locator(".tile.offline .offline-badge")).to_be_visible()

    # Remove offline files, from the form the progress stream rendered: counted, then removed.
    await page.get_by_role("button", name="Remove 1 offline asset").click()
    await expect(page.get_by_text("No offline asset to remove")).to_be_visible()
    await expect(status.locator(".asset-count")).to_have_text("5")

    # Delete the library: the confirmation names what is lost (the assets, never the files).
    await page.get_by_text("Delete “Christmas Trip”…").click()
    confirm = page.locator("form[action$='/delete']")
    await expect(confirm).to_contain_text("5 assets")
    await expect(confirm).to_contain_text("files on disk are never touched")
    await confirm.get_by_role("button").click()
    await expect(page).to_have_url(web.url + "/libraries")
    await expect(page.get_by_role("link", name="Christmas Trip")).to_have_count(0)
    assert (folder / "tree.jpg").exists()

    # Sign out: the pages ask for a session again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(web.url + "/auth/login")
    await page.goto(web.url + "/photos")
    await expect(page).to_have_url(web.url + "/auth/login")
    assert not web.problems, web.problems


async def test_library_settings_are_saved_through_the_system_config(web: Web) -> None:
    client = web.system.client
    await ok(await client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    page = await web.page()
    await sign_in(page, web, ADMIN["email"], ADMIN["password"])
    await page.get_by_role("navigation").get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Library")).to_be_visible()
    await expect(page.locator(".next-run")).to_contain_text("00:00 UTC")

    await page.get_by_label("Schedule (cron, UTC)").fill("not a cron")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("p.error")).to_contain_text("valid cron expression")
    web.problems.remove(
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    )

    await page.get_by_label("Schedule (cron, UTC)").fill("30 2 * * *")
    await page.get_by_label("Watch import paths for changes").check()
    await page.get_by_label("Poll instead of inotify").check()
    await page.get_by_label("Polling interval (ms)").fill("5000")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".next-run")).to_contain_text("02:30 UTC")
    await expect(page.get_by_label("Watch import paths for changes")).to_be_checked()
    await web.shot(page, "settings-library")

    admin = await login(web.system, ADMIN["email"], ADMIN["password"])
    config = await ok(await client.get("/api/system-config", headers=admin))
    assert config["library"] == {
        "scan": {"enabled": True, "cronExpression": "30 2 * * *"},
        "watch": {"enabled": True, "usePolling": True, "interval": 5000},
    }
    assert not web.problems, web.problems


async def test_an_admin_deletes_a_user_after_a_confirmation(web: Web) -> None:
    await ok(await web.system.client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    page = await web.page()
    await sign_in(page, web, ADMIN["email"], ADMIN["password"])
    await page.goto(web.url + "/admin/users")
    new_user = page.locator("form[action='/admin/users']")
    await new_user.get_by_label("Name").fill("Bob")
    await new_user.get_by_label("Email").fill("bob@example.com")
    await new_user.get_by_label("Password").fill("bob-secret")
    await new_user.get_by_role("button", name="Create user").click()
    row = page.locator("li[data-email='bob@example.com']")
    await row.get_by_text("Delete…").click()
    await expect(row).to_contain_text("Delete Bob (bob@example.com)?")
    await row.get_by_role("button", name="Delete user").click()
    await expect(page.locator("li[data-email='bob@example.com']")).to_have_count(0)
    # The admin cannot delete themself: there is no button to.
    admin_row = page.locator(f"li[data-email='{ADMIN['email']}']")
    await expect(admin_row.get_by_text("Delete…")).to_have_count(0)
    assert not web.problems, web.problems


async def test_scan_progress_is_pushed_from_the_scans_bucket(web: Web) -> None:
    """The progress stream renders when the scan's key changes, not on a timer: with the
    scanner stopped nothing else moves, and what is written to the key reaches the page
    within seconds although the stream looks on its own only after PROGRESS_QUIET (15 s)."""
    assert PROGRESS_QUIET >= 15
    folder = trip(web.media)
    client = web.system.client
    await ok(await client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    admin = await login(web.system, ADMIN["email"], ADMIN["password"])
    body = {**ALICE, "externalPath": str(web.media)}
    alice_dto = await ok(await client.post("/api/admin/users", json=body, headers=admin), 201)
    create = {"ownerId": alice_dto["id"], "name": "Trip", "importPaths": [str(folder)]}
    library = await ok(await client.post("/api/libraries", json=create, headers=admin), 201)
    await web.system.stop("scanner")  # the scan stays running, its counters still

    page = await web.page()
    await sign_in(page, web, ALICE["email"], ALICE["password"])
    await page.goto(f"{web.url}/libraries/{library['id']}")
    await page.get_by_role("button", name="Scan new files").click()
    status = page.locator(".scan-status")
    await expect(status).to_have_attribute("data-state", "running")
    await expect(status).to_contain_text("0 files seen")
    run = await ok(await client.get(f"/api/libraries/{library['id']}/scan", headers=admin))
    scan_id = uuid.UUID(run["scanId"])
    js, nats = web.system.ctx.nc.jetstream(), web.system.settings.nats

    await update_progress(js, nats, scan_id, pending=3, dirs_done=1, files_seen=41)
    await expect(status).to_contain_text("41 files seen", timeout=5_000)
    bar = page.locator("progress.scan-progress")
    await expect(bar).to_have_attribute("value", "1")
    await expect(bar).to_have_attribute("max", "4")
    await update_progress(js, nats, scan_id, pending=-1, dirs_done=1, files_seen=1)
    await expect(status).to_contain_text("42 files seen", timeout=5_000)
    await expect(bar).to_have_attribute("value", "2")
    await web.shot(page, "library-scanning")

    # The scanner back: it takes the scan's work, finishes it, and the page follows to the end.
    await web.system.start("scanner", run_scanner)
    await expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    await expect(status).to_contain_text("8 new")
    assert not web.problems, web.problems
