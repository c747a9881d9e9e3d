"""The scanner's pipelined publishing (services/scanner/publish.py) against real NATS: a
discovery refused by its expectation is a replica's duplicate, or an asset removed earlier that
starts a new life on its own subject."""

from __future__ import annotations

from tests.factories import make_tree
from tests.integration.conftest import World


async def test_a_removed_file_found_again_is_the_same_asset_again(world: World) -> None:
    files = make_tree(world.media, {"a.jpg": None, "b.jpg": None})
    lib = await world.library(world.media)
    await world.scan(lib)
    path = str(files["a.jpg"])
    first = (await world.assets(lib))[path]["id"]
    aside = files["a.jpg"].rename(world.media / "a.jpg.aside")
    await world.scan(lib)
    r = await world.system.client.post(f"/api/libraries/{lib}/removeOffline", headers=world.admin)
    assert r.json()["removed"] == 1
    assert path not in await world.assets(lib)
    aside.rename(path)
    state = await world.scan(lib)
    again = (await world.assets(lib))[path]
    assert (again["id"], again["isOffline"], state["new"]) == (first, False, 1)
