"""TimelineController (/api/timeline) and MapController (/api/map)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import QueryParameter

from services.api import schemas as s
from services.api import timeline
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context

Order = Literal["asc", "desc"]


async def provide_filter(
    auth: AuthUser,
    album_id: Annotated[uuid.UUID | None, QueryParameter(name="albumId")] = None,
    is_favorite: Annotated[bool | None, QueryParameter(name="isFavorite")] = None,
    is_trashed: Annotated[bool | None, QueryParameter(name="isTrashed")] = None,
    user_id: Annotated[uuid.UUID | None, QueryParameter(name="userId")] = None,
    visibility: str | None = None,
) -> timeline.TimelineFilter:
    """The filters both timeline routes share (Immich's TimeBucketDto), from the query."""
    return timeline.TimelineFilter(
        auth,
        album_id=album_id,
        is_favorite=is_favorite,
        is_trashed=is_trashed,
        visibility=visibility,
        user_id=user_id,
    )


class TimelineController(Controller):
    path = "/api/timeline"
    tags = ["Timeline"]
    dependencies = {"flt": Provide(provide_filter)}

    @get("/buckets", operation_id="getTimeBuckets", opt=requires(Permission.TIMELINE_READ))
    async def buckets(
        self, ctx: Context, flt: timeline.TimelineFilter, order: Order = "desc"
    ) -> list[s.TimeBucketsResponseDto]:
        async with ctx.engine.connect() as conn:
            return await timeline.time_buckets(conn, flt, order)

    @get("/bucket", operation_id="getTimeBucket", opt=requires(Permission.TIMELINE_READ))
    async def bucket(
        self,
        ctx: Context,
        flt: timeline.TimelineFilter,
        time_bucket: Annotated[str, QueryParameter(name="timeBucket")],
        with_coordinates: Annotated[bool, QueryParameter(name="withCoordinates")] = False,
        order: Order = "desc",
    ) -> s.TimeBucketAssetResponseDto:
        async with ctx.engine.connect() as conn:
            return await timeline.time_bucket(conn, flt, time_bucket, order, with_coordinates)


class MapController(Controller):
    path = "/api/map"
    tags = ["Map"]

    @get("/markers", operation_id="getMapMarkers", opt=requires(Permission.MAP_READ))
    async def markers(
        self,
        ctx: Context,
        auth: AuthUser,
        is_favorite: Annotated[bool | None, QueryParameter(name="isFavorite")] = None,
        is_archived: Annotated[bool | None, QueryParameter(name="isArchived")] = None,
        file_created_after: Annotated[
            datetime | None, QueryParameter(name="fileCreatedAfter")
        ] = None,
        file_created_before: Annotated[
            datetime | None, QueryParameter(name="fileCreatedBefore")
        ] = None,
    ) -> list[s.MapMarkerResponseDto]:
        async with ctx.engine.connect() as conn:
            return await timeline.map_markers(
                conn,
                auth,
                is_favorite=is_favorite,
                is_archived=is_archived,
                created_after=file_created_after,
                created_before=file_created_before,
            )
