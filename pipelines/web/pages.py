"""Server-rendered dashboards: overview of regions, one region, one room.

Pages render their tables on the server (readable without JavaScript) and embed their data as
JSON for ``static/dashboard.js``, which draws the charts (hand-rolled SVG) and, on the room
page, applies the live feed. Every value is escaped; the JSON is embedded so that ``</script>``
cannot end it early. A ``?token=`` is exchanged for an HttpOnly, SameSite=Strict cookie and
the browser is redirected to the same address without it, so the token leaves the address bar
and the history at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pipelines.web.api import DEFAULT_RANGE
from pipelines.web.auth import Grant
from pipelines.web.errors import ApiError
from pipelines.web.guard import COOKIE
from pipelines.web.views import (
    MEDIA,
    ParamError,
    TimeRange,
    cause_text,
    fitted_range,
    parse_range,
)

BARS = "▃▄▅▆▇"
PRESETS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
           "24h": timedelta(hours=24), "7d": timedelta(days=7)}
LEVEL_NAMES = {0: "broken", 1: "very bad", 2: "bad", 3: "average", 4: "good", 5: "very good"}
COOKIE_MAX_AGE = 12 * 3600
LIVE_BADGE = '<span id="live" class="live">live</span>'
"""The overview and region pages re-read themselves every few seconds (dashboard.js)."""


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def u(value: object) -> str:
    """A path segment: URL-quoted, then HTML-escaped."""
    return e(quote(str(value), safe=""))


def td(label: str, content: str, cls: str = "") -> str:
    """A cell that names its column (``data-label``): phones show tables as labelled cards."""
    klass = f' class="{cls}"' if cls else ""
    return f'<td data-label="{e(label)}"{klass}>{content}</td>'


def bars(level: int | None) -> str:
    """``▃▄▅▆▇`` with the first ``level`` bars lit (level 0: none lit, and a cross)."""
    lit = level or 0
    spans = "".join(
        f'<span class="{"on" if i < lit else "off"}">{ch}</span>' for i, ch in enumerate(BARS)
    )
    cross = '<span class="x">✕</span>' if level == 0 else ""
    return f'<span class="bars l{lit}" aria-label="level {e(level)}">{spans}{cross}</span>'


def embed(data: Any) -> str:
    text = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="page-data">{text}</script>'


def layout(title: str, body: str, *, crumbs: str = "", script: bool = True) -> HTMLResponse:
    js = '<script src="/static/dashboard.js" defer></script>' if script else ""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · netquality</title>
<link rel="stylesheet" href="/static/dashboard.css">{js}
</head><body>
<header><a class="brand" href="/">netquality</a><nav>{crumbs}</nav></header>
<main>{body}</main>
<footer>Levels 0–5 relative to demand: 5 very good … 1 very bad, 0 broken.
<a href="/openapi.json">API</a></footer>
</body></html>"""
    return HTMLResponse(html, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": "default-src 'self'; "
                                       "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                                       "object-src 'none'; frame-ancestors 'none'",
                                       "Referrer-Policy": "no-referrer"})


def error_page(status: int, message: str) -> HTMLResponse:
    body = f'<section class="card"><h1>{status}</h1><p>{e(message)}</p>'
    if status == 401:
        body += ("<p>Open this page with <code>?token=&lt;your token&gt;</code> once; the "
                 "browser keeps it in a cookie for 12 hours.</p>")
    page = layout(f"{status}", body + "</section>", script=False)
    page.status_code = status
    return page


async def page_range(
    request: Request, *, room_sid: str | None = None, region: str | None = None
) -> tuple[TimeRange, str | None]:
    """The range a page shows: a preset (``?last=``), ``from``/``to``, or by default the data
    that exists: from its first change or minute up to now, at most one hour (``"fit"``)."""
    preset = request.query_params.get("last")
    now = datetime.now(UTC)
    if preset in PRESETS:
        return TimeRange(now - PRESETS[preset], now), preset
    start, end = request.query_params.get("from"), request.query_params.get("to")
    if start or end:
        settings = request.app.state.web.settings
        span = parse_range(start, end, now=now, default=DEFAULT_RANGE,
                           limit=timedelta(hours=settings.web_max_range_h))
        return span, None
    first = await run_in_threadpool(request.app.state.web.queries.first_data, now - DEFAULT_RANGE,
                                    room_sid=room_sid, region=region)
    return fitted_range(now, first, DEFAULT_RANGE), "fit"


def range_picker(path: str, span: TimeRange, chosen: str | None) -> str:
    fit = f'<a class="{"on" if chosen == "fit" else ""}" href="{e(path)}">since first data</a>'
    links = fit + " " + " ".join(
        f'<a class="{"on" if p == chosen else ""}" href="{e(path)}?last={p}">{p}</a>'
        for p in PRESETS
    )
    fmt = "%Y-%m-%dT%H:%M"
    return f"""<form class="range" method="get" action="{e(path)}">
<span class="presets">{links}</span>
<label>from <input type="datetime-local" name="from" value="{span.start.strftime(fmt)}"></label>
<label>to <input type="datetime-local" name="to" value="{span.end.strftime(fmt)}"></label>
<button type="submit">show</button> <small>UTC</small></form>"""


def alerts_html(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return '<p class="muted">No open alerts.</p>'
    items = []
    for a in alerts:
        opened = datetime.fromtimestamp(a["openedAt"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        where = a["roomSid"] or a["region"]
        link = (f'<a href="/rooms/{u(a["roomSid"])}">{e(where)}</a>' if a["roomSid"]
                else e(where))
        items.append(
            f'<li class="alert"><b>{e(a["kind"].replace("_", " "))}</b> {link} · '
            f'{a["degraded"]}/{a["participants"]} degraded ({a["share"]:.0%}) · since '
            f'{opened} UTC<br><span class="muted">{e(a["message"])}</span></li>'
        )
    return f'<ul class="alerts">{"".join(items)}</ul>'


async def _page_grant(request: Request) -> Grant | Response:
    web = request.app.state.web
    try:
        return web.guard.grant(request)
    except ApiError as exc:
        return error_page(exc.status, exc.message)


def _exchange_token(request: Request) -> Response | None:
    """``?token=`` -> cookie + redirect to the same page without it."""
    token = request.query_params.get("token")
    if token is None:
        return None
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
    if request.app.state.web.guard.tokens.lookup(token) is None:
        return error_page(401, "the token is not valid")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


async def overview(request: Request) -> Response:
    if (exchanged := _exchange_token(request)) is not None:
        return exchanged
    grant = await _page_grant(request)
    if isinstance(grant, Response):
        return grant
    web = request.app.state.web
    if not grant.everything and not grant.regions:
        links = "".join(f'<li><a href="/rooms/{u(r)}">{e(r)}</a></li>' for r in sorted(grant.rooms))
        return layout("Rooms", f'<section class="card"><h1>Your rooms</h1><ul>{links}</ul>'
                               "</section>")
    since = datetime.now(UTC) - timedelta(hours=24)
    regions = [r for r in await run_in_threadpool(web.queries.regions, since)
               if grant.covers_region(r["region"])]
    rows = []
    for r in regions:
        total = sum(r["participantsAtLevel"]) or 1
        dist = "".join(
            f'<i class="lv{n}" style="--w:{100 * c / total:.1f}%"></i>'
            for n, c in enumerate(r["participantsAtLevel"]) if c
        )
        share = r["recentDegradedShare"]
        average = bars(round(r["avgLevel"]) if r["avgLevel"] is not None else None)
        rows.append(
            "<tr>"
            + td("region", f'<a href="/regions/{u(r["region"])}">{e(r["region"])}</a>')
            + td("participants", str(r["participants"]), "num")
            + td("rooms", str(r["rooms"]), "num")
            + td("average now", f'{average} {"" if r["avgLevel"] is None else r["avgLevel"]}')
            + td("levels now", f'<span class="dist">{dist}</span>')
            + td("≤2 last 24 h", "–" if share is None else f"{share:.1%}", "num")
            + td("open alerts", str(r["openAlerts"]), f'num {"hot" if r["openAlerts"] else ""}')
            + "</tr>"
        )
    table = ("<div class='scroll' id='regions' data-live><table class='regions stack'><thead>"
             "<tr><th>region</th><th>participants</th>"
             "<th>rooms</th><th>average now</th><th>levels now</th><th>≤2 last 24 h</th>"
             "<th>open alerts</th></tr></thead><tbody>"
             + ("".join(rows) or "<tr><td colspan=7 class='muted'>No regions yet.</td></tr>")
             + "</tbody></table></div>")
    return layout("Regions", f'<section class="card"><h1>Regions {LIVE_BADGE}</h1>{table}'
                             f'</section>{legend()}{embed({"page": "overview", "refresh": True})}')


def legend() -> str:
    items = "".join(f'<span><i class="sw lv{n}"></i>{n} {LEVEL_NAMES[n]}</span>'
                    for n in range(5, -1, -1))
    return f'<p class="legend">{items}</p>'


async def region_page(request: Request) -> Response:
    if (exchanged := _exchange_token(request)) is not None:
        return exchanged
    web = request.app.state.web
    region = request.path_params["region"]
    try:
        web.guard.region(request, region)
        span, chosen = await page_range(request, region=region)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    except ParamError as exc:
        return error_page(422, str(exc))
    summary = await run_in_threadpool(web.queries.region_summary, region, span)
    rooms_now = await run_in_threadpool(web.queries.rooms_of_region, region)
    worst = "".join(
        "<tr>"
        + td("room", f'<a href="/rooms/{u(r["roomSid"])}">{e(r["roomSid"])}</a>')
        + td("time ≤2", f'{r["degradedShare"]:.1%}', "num")
        + td("average", f'{bars(round(r["avgLevel"]) if r["avgLevel"] is not None else None)} '
             f'{r["avgLevel"]}')
        + td("min", str(r["minLevel"]), "num")
        + td("peak participants", str(r["maxParticipants"]), "num")
        + "</tr>"
        for r in summary["worstRooms"]
    ) or "<tr><td colspan=5 class='muted'>No rooms in this range.</td></tr>"
    now = "".join(
        f'<li><a href="/rooms/{u(r["room_sid"])}">{e(r["room_sid"])}</a> '
        f'{bars(r["min_level"])} <span class="muted">{r["participants"]} participants, '
        f'worst {r["min_level"]}</span></li>'
        for r in rooms_now
    ) or "<li class='muted'>No participants now.</li>"
    crumbs = f'<a href="/">regions</a> › {e(region)}'
    live = request.query_params.get("to") is None and request.query_params.get("from") is None
    body = f"""
<section class="card"><h1>Region {e(region)} {LIVE_BADGE if live else ""}</h1>
<p class="muted" id="region-now" data-live>{summary["participantsNow"]} participants in
{summary["roomsNow"]} rooms now</p>
{range_picker(request.url.path, span, chosen)}
<h2>Levels over time <small>(share of participant-seconds,
{summary["bucketSeconds"] // 60} min steps)</small></h2>
<div id="distribution" class="chart" data-from="{summary["from"]}" data-to="{summary["to"]}">
</div>{legend()}</section>
<section class="card"><h2>Worst rooms</h2><div class="scroll" id="worst-rooms" data-live>
<table class="stack"><thead><tr><th>room</th><th>time ≤2</th><th>average</th><th>min</th>
<th>peak participants</th></tr></thead><tbody>{worst}</tbody></table></div></section>
<div class="cols">
<section class="card"><h2>Open alerts</h2><div id="region-alerts" data-live>
{alerts_html(summary["openAlerts"])}</div></section>
<section class="card"><h2>Rooms now</h2><ul class="rooms" id="rooms-now" data-live>{now}</ul>
</section>
</div>{embed({"page": "region", "summary": summary, "refresh": live})}"""
    return layout(f"Region {region}", body, crumbs=crumbs)


def _limit(view: dict[str, Any]) -> str:
    """What limits the participant, and whose uplink explains what it receives (if known)."""
    limit = e(view["limitedBy"] or "")
    cause = cause_text(view.get("cause"))
    if cause:
        limit += f' <small class="cause">{e(cause)}</small>'
    return limit


def participant_row(view: dict[str, Any]) -> str:
    """One participant: bars, level, what limits it, and each component with its metric."""
    comps = []
    for media in MEDIA:
        m = view[media]
        for direction in ("send", "recv"):
            level = m[direction]
            label = f"{media} {direction}"
            if level is None:
                comps.append(td(label, "–", "comp muted"))
                continue
            metric = m.get(f"{direction}LimitedBy")
            limit = f'<small>{e(metric)}</small>' if metric and level < 5 else ""
            comps.append(td(label, f"{level} {limit}", f"comp lv{level}t"))
    sid = view["participantSid"]
    return (
        f'<tr data-participant="{e(sid)}" data-level="{view["level"]}">'
        + td("participant", e(sid), "sid") + td("signal", bars(view["level"]))
        + td("level", str(view["level"]), f'num lv{view["level"]}t')
        + td("limited by", _limit(view), "limit")
        + "".join(comps) + "</tr>"
    )


async def room_page(request: Request) -> Response:
    if (exchanged := _exchange_token(request)) is not None:
        return exchanged
    web = request.app.state.web
    room_sid = request.path_params["roomSid"]
    try:
        _, region = await web.guard.room(request, room_sid)
        span, chosen = await page_range(request, room_sid=room_sid)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    except ParamError as exc:
        return error_page(422, str(exc))
    views = await run_in_threadpool(web.queries.participants, room_sid)
    history = await run_in_threadpool(web.queries.room_history, room_sid, span)
    alerts = await run_in_threadpool(web.queries.room_alerts, room_sid)
    region = region or (views[0]["region"] if views else None)
    if region is None:
        region = await run_in_threadpool(web.queries.room_region, room_sid)
    rows = "".join(participant_row(v) for v in views)
    crumbs = '<a href="/">regions</a>'
    if region:
        crumbs += f' › <a href="/regions/{u(region)}">{e(region)}</a>'
    crumbs += f" › {e(room_sid)}"
    live_to = request.query_params.get("to") is None
    body = f"""
<section class="card"><h1>Room {e(room_sid)} <span id="live" class="live">connecting…</span></h1>
<div class="scroll" id="room-table"><table class="participants stack"><thead><tr>
<th>participant</th><th>signal</th><th>level</th><th>limited by</th><th>audio send</th>
<th>audio recv</th><th>video send</th><th>video recv</th></tr></thead>
<tbody id="participants">{rows or ""}</tbody></table></div>
<p id="empty" class="muted" {"hidden" if rows else ""}>No participants right now.</p>
</section>
<section class="card"><h2>Timeline</h2>{range_picker(request.url.path, span, chosen)}
<div id="timelines"></div>{legend()}</section>
<section class="card"><h2>Open alerts</h2>{alerts_html(alerts)}</section>
{embed({"page": "room", "roomSid": room_sid, "history": history, "live": live_to,
        "feed": f"/api/rooms/{quote(room_sid, safe='')}/feed?verbosity=3"})}"""
    return layout(f"Room {room_sid}", body, crumbs=crumbs)


def page_routes() -> list[Route]:
    return [
        Route("/", overview),
        Route("/regions/{region}", region_page),
        Route("/rooms/{roomSid}", room_page),
    ]
