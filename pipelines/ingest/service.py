"""HTTP ingest for browsers (which cannot speak Kafka): ``POST /v1/samples`` to the stats topic.

:class:`IngestService` owns an aiokafka producer (``start``/``stop``) and hands out Starlette
routes, so the same service runs standalone (``create_ingest_app``, ``netquality ingest``) or
mounted inside another Starlette app, e.g. ``Mount("/ingest", routes=service.routes())``.

Answers of ``POST /v1/samples`` (body: one sample, an array, or a batch envelope):

- 200: every sample was accepted, i.e. the broker acknowledged it;
- 207 Multi-Status: some samples were accepted, some refused; ``results`` says which;
- 422: nothing was accepted because the body or every sample is invalid;
- 401 (missing or wrong bearer token, or an invalid or expired access token);
- 403 (a participant's access token, :mod:`pipelines.access`, and a sample of another room or
  participant: nothing of the request is published, since a client that sends someone else's
  samples is either broken or lying), 413 (body over ``NETQUALITY_INGEST_MAX_REQUEST_BYTES``
  or more than ``NETQUALITY_INGEST_MAX_SAMPLES`` samples), 415 (not ``application/json``);
- 503 with ``Retry-After``: the broker did not acknowledge; the unacknowledged samples carry
  code ``unavailable`` and may be sent again (the worker drops duplicates by ``seq``).

Every refused sample is also put on the dead-letter topic with its reason (source topic
``http-ingest``), so nothing disappears, and it is counted in :attr:`IngestService.counts`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.access import (
    AccessToken,
    AccessTokenError,
    SigningKeys,
    load_signing_keys,
    looks_like_access_token,
    verify_access_token,
)
from pipelines.config import Settings
from pipelines.contracts import encode, make_dead_letter
from pipelines.ingest.auth import BearerTokens, bearer_token, load_tokens
from pipelines.ingest.batch import BodyError, SampleResult, check_samples, split_body
from pipelines.kafka.clients import KafkaClients

log = logging.getLogger(__name__)

DEADLETTER_SOURCE = "http-ingest"
SCRIPT_NAME = "netquality-stats.js"
RETRY_AFTER_S = 5


@dataclass
class IngestCounts:
    """What the ingest has done since it started (for health checks, logs and tests)."""

    requests: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    unauthorized: int = 0
    forbidden: int = 0
    """Requests with a participant's access token carrying samples of someone else (403)."""
    dead_letters: int = 0
    failed: int = 0
    """Valid samples the broker did not acknowledge (answered 503)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "unauthorized": self.unauthorized,
            "forbidden": self.forbidden,
            "deadLetters": self.dead_letters,
            "failed": self.failed,
        }


class IngestService:
    """Validates posted samples and publishes them, keyed by ``participantSid``."""

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: list[str] | None = None,
        producer_config: dict[str, Any] | None = None,
        access_keys: SigningKeys | None = None,
    ) -> None:
        self.settings = settings
        self._access_keys = access_keys or load_signing_keys(
            settings.access_keys, settings.access_keys_file
        )
        self._tokens = BearerTokens(
            load_tokens(settings) if tokens is None else tokens,
            allow_none=self._access_keys is not None,
        )
        self._producer_config = dict(producer_config or {})
        self._producer: Any = None  # aiokafka.AIOKafkaProducer once started
        self.counts = IngestCounts()
        origins = [o.strip() for o in settings.ingest_cors_origins.split(",") if o.strip()]
        self._any_origin = "*" in origins
        self._origins = frozenset(origins)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer; safe to call once per service."""
        if not self.settings.kafka_bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS is unset: the ingest needs a broker")
        self._producer = KafkaClients(self.settings).producer(
            **{"acks": "all", "linger_ms": 5, **self._producer_config}
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and close the producer."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    # --- routes ----------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The ingest's routes, relative: mount them wherever (``/ingest`` in the web app)."""
        return [
            Route("/v1/samples", self.post_samples, methods=["POST", "OPTIONS"]),
            Route("/v1/health", self.health, methods=["GET"]),
            Route(f"/{SCRIPT_NAME}", self.script, methods=["GET"]),
            Route("/loopback", self.loopback_page, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        status = "ok" if self._producer is not None else "stopped"
        return JSONResponse(
            {"status": status, "counts": self.counts.as_dict()},
            status_code=200 if status == "ok" else 503,
        )

    async def script(self, request: Request) -> Response:
        return Response(
            _static(SCRIPT_NAME),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300", **self._cors(request)},
        )

    async def loopback_page(self, request: Request) -> Response:
        """A self-test page: a two-peer loopback call in this browser, posting its stats."""
        return Response(_static("loopback.html"), media_type="text/html; charset=utf-8")

    async def post_samples(self, request: Request) -> Response:
        cors = self._cors(request)
        if request.method == "OPTIONS":
            return self._preflight(request, cors)
        self.counts.requests += 1
        authorization = request.headers.get("authorization")
        access: AccessToken | None = None
        presented = bearer_token(authorization)
        if self._access_keys is not None and looks_like_access_token(presented):
            try:
                access = verify_access_token(self._access_keys, presented or "")
            except AccessTokenError as exc:
                self.counts.unauthorized += 1
                return _error(401, "unauthorized", str(exc),
                              {**cors, "WWW-Authenticate": 'Bearer realm="netquality"'})
        elif not self._tokens.allows(authorization):
            self.counts.unauthorized += 1
            return _error(401, "unauthorized", "a valid `Authorization: Bearer <token>` is "
                          "required", {**cors, "WWW-Authenticate": 'Bearer realm="netquality"'})
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _error(415, "unsupported_media_type",
                          f"send Content-Type: application/json, not {content_type or 'none'!r}",
                          cors)
        body = b""
        try:
            body = await self._read_body(request)
            elements = split_body(body, self.settings.ingest_max_samples)
        except BodyError as exc:
            if exc.status == 422:
                self.counts.rejected[exc.code] += 1
                await self._dead_letter([(body, exc.code, exc.message)])
            return _error(exc.status, exc.code, exc.message, cors)
        except ClientDisconnect:
            return Response(status_code=400)
        results = check_samples(elements)
        if access is not None:
            foreign = _foreign(results, access)
            if foreign is not None:
                self.counts.forbidden += 1
                return _error(403, "forbidden", foreign, cors)
        return await self._publish(results, cors)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.ingest_max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyError(413, "too_large", f"the body is {declared} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyError(413, "too_large", f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _publish(self, results: list[SampleResult], cors: dict[str, str]) -> Response:
        if self._producer is None:
            return _error(503, "unavailable", "the ingest is not connected to Kafka", cors)
        valid = [r for r in results if r.ok]
        invalid = [r for r in results if not r.ok]
        topic = self.settings.topic_stats
        sends = [
            self._producer.send(
                topic, value=encode(r.sample), key=r.sample.participant_sid.encode("utf-8")
            )
            for r in valid
            if r.sample is not None
        ]
        dead = self._dead_letter(
            [(r.raw, r.code or "invalid", f"sample {r.index}: {r.message}") for r in invalid]
        )
        outcomes = await asyncio.gather(*(self._acked(s) for s in sends))
        await dead
        failed = {r.index: error for r, error in zip(valid, outcomes, strict=True) if error}
        for r in invalid:
            self.counts.rejected[r.code or "invalid"] += 1
        self.counts.accepted += len(valid) - len(failed)
        self.counts.failed += len(failed)
        body = {
            "accepted": len(valid) - len(failed),
            "rejected": len(invalid),
            "failed": len(failed),
            "results": [_result(r, failed.get(r.index)) for r in results],
        }
        headers = dict(cors)
        if failed:
            status = 503
            headers["Retry-After"] = str(RETRY_AFTER_S)
        elif not invalid:
            status = 200
        else:
            status = 207 if valid else 422
        return JSONResponse(body, status_code=status, headers=headers)

    @staticmethod
    async def _acked(send: Any) -> str | None:
        """Wait for the broker's acknowledgement; the error text if there is none."""
        try:
            delivery = await send
            await delivery
        except Exception as exc:  # a failed delivery is answered, never raised
            log.warning("publishing a sample failed: %s: %s", type(exc).__name__, exc)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _dead_letter(self, rejected: list[tuple[bytes, str, str]]) -> None:
        """Put refused input on the dead-letter topic and wait for the broker."""
        if not rejected or self._producer is None:
            return
        now_ms = int(time.time() * 1000)
        try:
            futures = [
                await self._producer.send(
                    self.settings.topic_deadletter,
                    value=encode(
                        make_dead_letter(
                            raw, topic=DEADLETTER_SOURCE, partition=-1, offset=-1, key=None,
                            code=code, message=message, now_ms=now_ms,
                        )
                    ),
                )
                for raw, code, message in rejected
            ]
            await asyncio.gather(*futures)
            self.counts.dead_letters += len(futures)
        except Exception:
            log.exception("dead-lettering %d refused samples failed", len(rejected))

    # --- CORS ------------------------------------------------------------------------------

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if not origin or not (self._any_origin or origin in self._origins):
            return {}
        return {
            "Access-Control-Allow-Origin": "*" if self._any_origin else origin,
            "Access-Control-Expose-Headers": "Retry-After",
            "Vary": "Origin",
        }

    def _preflight(self, request: Request, cors: dict[str, str]) -> Response:
        if not cors:
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )


def _foreign(results: list[SampleResult], access: AccessToken) -> str | None:
    """Why a participant's token may not post these samples, or None when all are its own."""
    for r in results:
        sample = r.sample
        if sample is None:
            continue
        if sample.room_sid != access.room_sid:
            return (f"sample {r.index} is for room {sample.room_sid}; this access token is "
                    f"for room {access.room_sid}")
        if sample.participant_sid != access.participant_sid:
            return (f"sample {r.index} is for participant {sample.participant_sid}; this "
                    f"access token is for {access.participant_sid}")
    return None


def _result(r: SampleResult, failure: str | None) -> dict[str, Any]:
    if r.ok and failure is None:
        return {"index": r.index, "ok": True}
    if r.ok:
        return {"index": r.index, "ok": False,
                "error": {"code": "unavailable", "message": failure}}
    return {"index": r.index, "ok": False, "error": {"code": r.code, "message": r.message}}


def _error(status: int, code: str, message: str, headers: dict[str, str]) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


_static_cache: dict[str, bytes] = {}


def _static(name: str) -> bytes:
    if name not in _static_cache:
        _static_cache[name] = (
            resources.files("pipelines.ingest").joinpath("static", name).read_bytes()
        )
    return _static_cache[name]
