"""ServerController: /api/server (Immich's server tag)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from services.api import schemas as s
from services.api import server_info
from services.api.auth import Permission, public, requires
from services.api.context import Context
from services.api.schemas import ServerPingResponse, ServerVersionResponseDto
from shared.media import media_types_response

VERSION = (3, 2, 2)  # the Immich release whose API (and pinned clients) Shoebox follows


class ServerController(Controller):
    path = "/api/server"
    tags = ["Server"]

    @get("/ping", operation_id="pingServer", opt=public())
    async def ping(self) -> ServerPingResponse:
        return ServerPingResponse()

    @get("/version", operation_id="getServerVersion", opt=public())
    async def version(self) -> ServerVersionResponseDto:
        major, minor, patch = VERSION
        return ServerVersionResponseDto(major=major, minor=minor, patch=patch)

    @get("/features", operation_id="getServerFeatures", opt=public())
    async def features(self) -> dict[str, bool]:
        return {
            "smartSearch": False,
            "facialRecognition": False,
            "duplicateDetection": False,
            "map": True,
            "reverseGeocoding": False,
            "importFaces": False,
            "sidecar": True,
            "search": True,
            "trash": True,
            "oauth": False,
            "oauthAutoLaunch": False,
            "passwordLogin": True,
            "configFile": False,
            "email": False,
            "ocr": False,
        }

    @get("/version-history", operation_id="getVersionHistory", opt=public())
    async def version_history(self, ctx: Context) -> list[s.ServerVersionHistoryResponseDto]:
        """The version Shoebox has run since its first admin signed up (one entry)."""
        async with ctx.engine.connect() as conn:
            return await server_info.version_history(conn, VERSION)

    @get(
        "/version-check",
        operation_id="getVersionCheck",
        opt=requires(Permission.SERVER_VERSION_CHECK),
    )
    async def version_check(self) -> s.VersionCheckStateResponseDto:
        """Immich's last version check, without asking anyone: the running version is the
        release (Shoebox makes no network call to look for a newer one)."""
        return server_info.version_check(VERSION)

    @get("/storage", operation_id="getStorage", opt=requires(Permission.SERVER_STORAGE))
    async def storage(self, ctx: Context) -> s.ServerStorageResponseDto:
        """Size, use and free space of the file system holding the upload location."""
        return await server_info.storage(ctx.settings.upload_path)

    @get(
        "/statistics",
        operation_id="getServerStatistics",
        opt=requires(Permission.SERVER_STATISTICS, admin=True),
    )
    async def statistics(self, ctx: Context) -> s.ServerStatsResponseDto:
        """Photos, videos and bytes of every user (bytes: their uploads)."""
        async with ctx.engine.connect() as conn:
            return await server_info.statistics(conn)

    @get("/media-types", operation_id="getSupportedMediaTypes", opt=public())
    async def media_types(self) -> dict[str, list[str]]:
        return media_types_response()

    @get("/about", operation_id="getAboutInfo", opt=requires(Permission.SERVER_ABOUT))
    async def about(self) -> dict[str, Any]:
        major, minor, patch = VERSION
        return {
            "version": f"v{major}.{minor}.{patch}",
            "versionUrl": "",
            "licensed": False,
            "build": "shoebox",
            "sourceRef": "main",
            "sourceCommit": "",
            "sourceUrl": "",
            "repository": "shoebox",
            "repositoryUrl": "",
            "nodejs": None,
            "exiftool": None,
            "ffmpeg": None,
            "libvips": None,
            "imagemagick": None,
        }

    @get("/config", operation_id="getServerConfig", opt=public())
    async def config(self) -> dict[str, Any]:
        return {
            "loginPageMessage": "",
            "trashDays": 30,
            "userDeleteDelay": 7,
            "oauthButtonText": "",
            "isInitialized": True,
            "isOnboarded": True,
            "externalDomain": "",
            "publicUsers": True,
            "mapDarkStyleUrl": "",
            "mapLightStyleUrl": "",
            "maintenanceMode": False,
        }
