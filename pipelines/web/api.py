"""The JSON API and the live feed: ``/api/...``, ``/healthz``, ``/readyz``, ``/openapi.json``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipelines.web.errors import ApiError
from pipelines.web.feed import merge_snapshot, next_or_heartbeat, sse
from pipelines.web.openapi import openapi_document
from pipelines.web.views import ParamError, TimeRange, parse_range, parse_verbosity, shape

DEFAULT_RANGE = timedelta(hours=1)
MAX_SID = 128


def _sid(request: Request, name: str) -> str:
    value = request.path_params[name]
    if not value or len(value) > MAX_SID:
        raise ApiError(422, f"{name} must be 1 to {MAX_SID} characters")
    return value


def time_range(request: Request) -> TimeRange:
    web = request.app.state.web
    try:
        return parse_range(
            request.query_params.get("from"),
            request.query_params.get("to"),
            now=datetime.now(UTC),
            default=DEFAULT_RANGE,
            limit=timedelta(hours=web.settings.web_max_range_h),
        )
    except ParamError as exc:
        raise ApiError(422, str(exc)) from None


async def participants(request: Request) -> Response:
    web = request.app.state.web
    room_sid = _sid(request, "roomSid")
    await web.guard.room(request, room_sid)
    views = await run_in_threadpool(web.queries.participants, room_sid)
    if not views and await run_in_threadpool(web.queries.room_region, room_sid) is None:
        raise ApiError(404, f"room {room_sid} has no levels (yet)")
    return JSONResponse({"roomSid": room_sid, "participants": views})


async def history(request: Request) -> Response:
    web = request.app.state.web
    room_sid = _sid(request, "roomSid")
    await web.guard.room(request, room_sid)
    span = time_range(request)
    if await run_in_threadpool(web.queries.room_region, room_sid) is None:
        raise ApiError(404, f"room {room_sid} has no levels (yet)")
    return JSONResponse(await run_in_threadpool(web.queries.room_history, room_sid, span))


async def regions(request: Request) -> Response:
    web = request.app.state.web
    grant = web.guard.grant(request)
    if not grant.everything and not grant.regions:
        raise ApiError(403, "this token covers single rooms only; ask /api/rooms/{roomSid}/...")
    since = datetime.now(UTC) - timedelta(hours=24)
    rows = await run_in_threadpool(web.queries.regions, since)
    return JSONResponse({"regions": [r for r in rows if grant.covers_region(r["region"])]})


async def region_summary(request: Request) -> Response:
    web = request.app.state.web
    region = _sid(request, "region")
    web.guard.region(request, region)
    span = time_range(request)
    if not await run_in_threadpool(web.queries.region_exists, region):
        raise ApiError(404, f"region {region} has no data")
    return JSONResponse(await run_in_threadpool(web.queries.region_summary, region, span))


async def feed(request: Request) -> Response:
    """Server-Sent Events: a ``snapshot`` first, then ``level`` events, ``: ping`` heartbeats.

    With ``Last-Event-ID`` (what ``EventSource`` sends when it reconnects) the changes after
    that event time come first from Postgres, marked ``replayed``, then the snapshot.
    """
    web = request.app.state.web
    room_sid = _sid(request, "roomSid")
    grant, _ = await web.guard.room(request, room_sid)
    try:
        verbosity = parse_verbosity(request.query_params.get("verbosity"))
    except ParamError as exc:
        raise ApiError(422, str(exc)) from None
    resume_from = resume_point(request, web.settings.web_max_range_h)
    hub = web.hub
    subscription = hub.subscribe(room_sid)
    try:
        stored = await run_in_threadpool(web.queries.participants, room_sid)
        missed = [] if resume_from is None else await run_in_threadpool(
            web.queries.changes_since, room_sid, resume_from)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    snapshot = merge_snapshot(stored, hub.seen(room_sid))
    heartbeat = web.settings.web_heartbeat_s

    async def stream() -> AsyncIterator[bytes]:
        sent = {sid: v["timestamp"] for sid, v in snapshot.items()}
        last = max(sent.values(), default=int(time.time() * 1000))
        try:
            yield b"retry: 2000\n\n"
            for view in missed:  # a reconnecting client gets what it missed, then the snapshot
                body = {**shape(view, verbosity), "replayed": True}
                yield sse("level", json.dumps(body), str(view["timestamp"]))
            body = {"roomSid": room_sid, "verbosity": verbosity,
                    "participants": [shape(v, verbosity) for v in snapshot.values()]}
            yield sse("snapshot", json.dumps(body), str(last))
            async for view in next_or_heartbeat(subscription, heartbeat):
                if view is None:
                    if subscription.overflowed:
                        return
                    yield b": ping\n\n"
                    continue
                sid = view["participantSid"]
                if sent.get(sid, -1) >= view["timestamp"] and not view["departed"]:
                    continue  # already in the snapshot (or older)
                sent[sid] = view["timestamp"]
                yield sse("level", json.dumps(shape(view, verbosity)), str(view["timestamp"]))
        finally:
            hub.unsubscribe(subscription)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if grant.participant is not None:  # the browser client, maybe on the app's own origin
        headers.update(browser_cors(request, web.settings.ingest_cors_origins))
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def browser_cors(request: Request, allowed_origins: str) -> dict[str, str]:
    """CORS for the browser client's feed: the origins that may post to the ingest may also
    read their room's feed. Never with credentials: the access token is in the URL, and the
    dashboards' cookie is not for other origins."""
    origin = request.headers.get("origin")
    allowed = {o.strip() for o in allowed_origins.split(",") if o.strip()}
    if not origin or not ("*" in allowed or origin in allowed):
        return {}
    return {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin, "Vary": "Origin"}


def resume_point(request: Request, max_range_h: float) -> datetime | None:
    """``Last-Event-ID`` (an event time in ms, as the feed sends) -> resume after it.

    The ``lastEventId`` query parameter says the same for a client that opens a new
    ``EventSource`` itself (it cannot set the header; the browser's own retries do).
    Anything else, or a point older than the longest range a query may ask, is ignored and
    the client just gets the snapshot.
    """
    raw = (request.headers.get("last-event-id")
           or request.query_params.get("lastEventId", "")).strip()
    if not raw.isdigit() or len(raw) > 16:
        return None
    since = datetime.fromtimestamp(int(raw) / 1000, UTC)
    if datetime.now(UTC) - since > timedelta(hours=max_range_h):
        return None
    return since


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    web = request.app.state.web
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(run_in_threadpool(web.queries.ping), 5)
        checks["postgres"] = "ok"
    except Exception as exc:  # the message of a failed check is the answer
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
    checks["broker"] = "ok" if web.hub.connected.is_set() else "not connected"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


async def openapi(_: Request) -> Response:
    return JSONResponse(openapi_document())


def api_routes() -> list[Route]:
    return [
        Route("/api/regions", regions),
        Route("/api/regions/{region}/summary", region_summary),
        Route("/api/rooms/{roomSid}/participants", participants),
        Route("/api/rooms/{roomSid}/history", history),
        Route("/api/rooms/{roomSid}/feed", feed),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/openapi.json", openapi),
    ]
