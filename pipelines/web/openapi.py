"""The OpenAPI 3.1 description of the API, written by hand (a test validates it).

Hand-written because Starlette generates nothing by itself and the feed (SSE) and the scope
rules are easier to state plainly than to derive.
"""

from __future__ import annotations

from functools import cache
from typing import Any

LEVEL = {"type": "integer", "minimum": 0, "maximum": 5}
NULLABLE_LEVEL = {"type": ["integer", "null"], "minimum": 0, "maximum": 5}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
}
_RANGE = [
    {"name": "from", "in": "query", "required": False,
     "description": "Start, ISO 8601 or epoch ms (default: `to` - 1 h)",
     "schema": {"type": "string"}},
    {"name": "to", "in": "query", "required": False,
     "description": "End, ISO 8601 or epoch ms (default: now); the range is limited "
                    "(NETQUALITY_WEB_MAX_RANGE_H)",
     "schema": {"type": "string"}},
]
_ROOM = {"name": "roomSid", "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
_REGION = {"name": "region", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1, "maxLength": 64}}


@cache
def openapi_document() -> dict[str, Any]:
    media = {
        "type": "object",
        "properties": {
            "send": NULLABLE_LEVEL, "recv": NULLABLE_LEVEL,
            "sendStats": {"type": ["object", "null"]}, "recvStats": {"type": ["object", "null"]},
            "sendLimitedBy": {"type": ["string", "null"]},
            "recvLimitedBy": {"type": ["string", "null"]},
        },
    }
    participant = {
        "type": "object",
        "required": ["participantSid", "roomSid", "timestamp", "level"],
        "properties": {
            "participantSid": {"type": "string"}, "roomSid": {"type": "string"},
            "region": {"type": "string"}, "eventId": {"type": "string"},
            "timestamp": {"type": "integer", "description": "ms since the epoch"},
            "level": LEVEL, "previousLevel": NULLABLE_LEVEL,
            "audio": _ref("Media"), "video": _ref("Media"),
            "limitedBy": {"type": ["string", "null"], "examples": ["video.send.bandwidth"]},
            "departed": {"type": "boolean"},
        },
    }
    alert = {
        "type": "object",
        "properties": {
            "alertId": {"type": "string"}, "kind": {"type": "string"},
            "status": {"enum": ["opened", "updated", "resolved"]},
            "region": {"type": "string"}, "roomSid": {"type": ["string", "null"]},
            "participantSid": {"type": ["string", "null"]},
            "openedAt": {"type": "integer"}, "updatedAt": {"type": "integer"},
            "participants": {"type": "integer"}, "degraded": {"type": "integer"},
            "share": {"type": "number"}, "message": {"type": "string"},
            "worst": {"type": "array", "items": {"type": "object"}},
        },
    }
    seconds = {"type": "array", "items": {"type": "number"}, "minItems": 6, "maxItems": 6,
               "description": "participant-seconds at level 0..5"}
    secured = [{"bearer": []}, {"cookie": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "netquality API",
            "version": "1.0.0",
            "description": "Network Quality Levels (0-5) per participant: current levels, "
            "history, per-region summaries and a live feed per room. Tokens are scoped to a "
            "room (`room:<sid>`), a region (`region:<name>`, all its rooms) or everything "
            "(`*`). No token: 401; out of scope: 403. Errors are `{error, message}`.",
        },
        "security": secured,
        "paths": {
            "/api/regions": {"get": {
                "summary": "Regions: participants now, levels now, last 24 h, open alerts",
                "responses": {"200": _json({"type": "object", "properties": {
                    "regions": {"type": "array", "items": _ref("RegionOverview")}}},
                    "Regions the token covers"), **_ERRORS},
            }},
            "/api/regions/{region}/summary": {"get": {
                "summary": "Level distribution over time, worst rooms, open alerts",
                "parameters": [_REGION, *_RANGE],
                "responses": {"200": _json(_ref("RegionSummary"), "Summary"), **_ERRORS,
                              "404": {"$ref": "#/components/responses/NotFound"},
                              "422": {"$ref": "#/components/responses/Invalid"}},
            }},
            "/api/rooms/{roomSid}/participants": {"get": {
                "summary": "Current level, component levels and stats per participant",
                "parameters": [_ROOM],
                "responses": {"200": _json({"type": "object", "properties": {
                    "roomSid": {"type": "string"},
                    "participants": {"type": "array", "items": _ref("Participant")}}},
                    "Present participants"), **_ERRORS,
                    "404": {"$ref": "#/components/responses/NotFound"}},
            }},
            "/api/rooms/{roomSid}/history": {"get": {
                "summary": "Level changes and per-minute rollups of a room",
                "parameters": [_ROOM, *_RANGE],
                "responses": {"200": _json(_ref("RoomHistory"), "History"), **_ERRORS,
                              "404": {"$ref": "#/components/responses/NotFound"},
                              "422": {"$ref": "#/components/responses/Invalid"}},
            }},
            "/api/rooms/{roomSid}/feed": {"get": {
                "summary": "Live level changes (Server-Sent Events)",
                "description": "First a `snapshot` event (current levels of every present "
                "participant), then one `level` event per change, `: ping` comments as "
                "heartbeats. Event ids are event times (ms). Verbosity as Twilio's: 1 the "
                "level, 2 plus component levels, 3 plus detailed stats.",
                "parameters": [_ROOM, {"name": "verbosity", "in": "query", "required": False,
                                       "schema": {"enum": ["1", "2", "3"], "default": "1"}},
                               {"name": "lastEventId", "in": "query", "required": False,
                                "description": "Resume after this event id, as the "
                                "Last-Event-ID header (for a client opening a new EventSource)",
                                "schema": {"type": "string", "pattern": "^[0-9]{1,16}$"}}],
                "security": [*secured, {"accessToken": []}],
                "responses": {"200": {"description": "An event stream",
                                      "content": {"text/event-stream": {
                                          "schema": {"type": "string"}}}},
                              **_ERRORS, "422": {"$ref": "#/components/responses/Invalid"}},
            }},
            "/healthz": {"get": {"summary": "The process is up", "security": [],
                                 "responses": {"200": {"description": "Up"}}}},
            "/readyz": {"get": {"summary": "Postgres and the broker are reachable",
                                "security": [],
                                "responses": {"200": {"description": "Ready"},
                                              "503": {"description": "Not ready"}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "nq_token",
                           "description": "Set by the dashboards from ?token= (HttpOnly)"},
                "accessToken": {"type": "apiKey", "in": "query", "name": "access_token",
                                "description": "A participant's access token (a JWT minted by "
                                "`netquality token`), for an EventSource that cannot send "
                                "headers; operator tokens are never read from a URL"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}}},
                "Media": media,
                "Participant": participant,
                "Alert": alert,
                "RegionOverview": {"type": "object", "properties": {
                    "region": {"type": "string"}, "participants": {"type": "integer"},
                    "rooms": {"type": "integer"}, "avgLevel": {"type": ["number", "null"]},
                    "participantsAtLevel": {"type": "array", "items": {"type": "integer"}},
                    "recentSecondsAtLevel": seconds,
                    "recentDegradedShare": {"type": ["number", "null"]},
                    "openAlerts": {"type": "integer"}}},
                "RegionSummary": {"type": "object", "properties": {
                    "region": {"type": "string"}, "from": {"type": "integer"},
                    "to": {"type": "integer"}, "bucketSeconds": {"type": "integer"},
                    "participantsNow": {"type": "integer"}, "roomsNow": {"type": "integer"},
                    "distribution": {"type": "array", "items": {"type": "object", "properties": {
                        "time": {"type": "integer"}, "secondsAtLevel": seconds}}},
                    "worstRooms": {"type": "array", "items": {"type": "object"}},
                    "openAlerts": {"type": "array", "items": _ref("Alert")}}},
                "RoomHistory": {"type": "object", "properties": {
                    "roomSid": {"type": "string"}, "from": {"type": "integer"},
                    "to": {"type": "integer"}, "truncated": {"type": "boolean"},
                    "initial": {"type": "array", "items": {"type": "object"}},
                    "changes": {"type": "array", "items": {"type": "object"}},
                    "minutes": {"type": "array", "items": {"type": "object", "properties": {
                        "minute": {"type": "integer"}, "secondsAtLevel": seconds}}}}},
            },
            "responses": {
                name: _json(_ref("Error"), text) for name, text in (
                    ("Unauthorized", "No token, or an unknown one"),
                    ("Forbidden", "The token does not cover this room or region"),
                    ("NotFound", "Nothing is known about this room or region"),
                    ("Invalid", "A parameter is malformed or the range too long"),
                )
            },
        },
    }
