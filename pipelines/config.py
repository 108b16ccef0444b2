"""The one settings object, read from the environment.

Every knob of every service is a field here with its environment variable and a one-line
reason; ``netquality settings`` prints them, and the docs/settings.md table is generated from
:func:`settings_table`. Unset ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` mean "start the
embedded broker / Postgres" (see ``pipelines.runtime``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _env(name: str, doc: str) -> dict[str, str]:
    return {"env": name, "doc": doc}


@dataclass(frozen=True, slots=True)
class Settings:
    """All configuration of netquality; build it with :meth:`from_env`."""

    kafka_bootstrap_servers: str | None = field(
        default=None,
        metadata=_env(
            "KAFKA_BOOTSTRAP_SERVERS", "Kafka brokers (host:port,...); unset = embedded broker"
        ),
    )
    database_url: str | None = field(
        default=None,
        metadata=_env(
            "DATABASE_URL", "Postgres URL (postgresql://user:pw@host/db); unset = embedded Postgres"
        ),
    )
    state_dir: Path = field(
        default=Path("var"),
        metadata=_env(
            "NETQUALITY_STATE_DIR", "Worker table state, embedded broker/Postgres data and logs"
        ),
    )
    topic_stats: str = field(
        default="netquality.stats.v1", metadata=_env("NETQUALITY_TOPIC_STATS", "Raw samples in")
    )
    topic_levels: str = field(
        default="netquality.levels.v1",
        metadata=_env("NETQUALITY_TOPIC_LEVELS", "Level-change events (history)"),
    )
    topic_levels_current: str = field(
        default="netquality.levels.current.v1",
        metadata=_env(
            "NETQUALITY_TOPIC_LEVELS_CURRENT", "Latest level per participant (compacted)"
        ),
    )
    topic_rollups: str = field(
        default="netquality.rollups.v1",
        metadata=_env("NETQUALITY_TOPIC_ROLLUPS", "Per-minute room and region aggregates"),
    )
    topic_alerts: str = field(
        default="netquality.alerts.v1",
        metadata=_env("NETQUALITY_TOPIC_ALERTS", "Alerts opened/updated/resolved"),
    )
    topic_deadletter: str = field(
        default="netquality.deadletter.v1",
        metadata=_env("NETQUALITY_TOPIC_DEADLETTER", "Rejected input with the reason"),
    )
    partitions: int = field(
        default=8,
        metadata=_env(
            "NETQUALITY_PARTITIONS", "Partitions per topic: the ceiling on parallel workers"
        ),
    )
    replication_factor: int = field(
        default=1,
        metadata=_env("NETQUALITY_REPLICATION_FACTOR", "Topic replication (3 in production)"),
    )
    app_id: str = field(
        default="netquality",
        metadata=_env(
            "NETQUALITY_APP_ID", "Faust app id: the worker consumer group and changelog prefix"
        ),
    )
    sink_group: str = field(
        default="netquality-sink",
        metadata=_env("NETQUALITY_SINK_GROUP", "Consumer group of the Postgres sink"),
    )
    store: str = field(
        default="memory://",
        metadata=_env(
            "NETQUALITY_STORE", "Faust table store: memory:// or rocksdb:// (needs rocksdict)"
        ),
    )
    rebalance_timeout_s: float = field(
        default=3.0,
        metadata=_env(
            "NETQUALITY_REBALANCE_TIMEOUT_S",
            "Consumer-group rebalance timeout; Tansu joins only after it, so keep it short",
        ),
    )
    fetch_max_wait_ms: int = field(
        default=20,
        metadata=_env(
            "NETQUALITY_FETCH_MAX_WAIT_MS",
            "Longest a worker's fetch waits for data (Faust fixes 1,500; Tansu does not answer a"
            " waiting fetch early, so this is a latency floor per hop)",
        ),
    )
    thresholds_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_THRESHOLDS_FILE", "JSON file overriding scoring thresholds (optional)"
        ),
    )
    participant_ttl_s: float = field(
        default=120.0,
        metadata=_env(
            "NETQUALITY_PARTICIPANT_TTL_S",
            "Silence after which a participant's state is expired with a final event",
        ),
    )
    event_time_behind_s: float = field(
        default=300.0,
        metadata=_env(
            "NETQUALITY_EVENT_TIME_BEHIND_S",
            "Rollups and alerts drop (count as late) a level event older than the stream "
            "clock by more than this",
        ),
    )
    """A client clock behind the stream by more than this is wrong, not late: NTP keeps
    devices within a second or two. 5 minutes covers a client that queued its stats while
    offline and the stages' own reordering (seconds), and exceeds what a room can still
    correct anyway (2 closed minutes plus 5 s of lateness, ``pipelines.quality.rollups``). It
    bounds what one wrong clock can do: a room opened by a late event fills at most 5 minutes
    before the clock (a 2023 clock filled every minute since 2023), and it stays below the
    10 minutes a region keeps room minutes for, so room and region totals agree."""
    event_time_ahead_s: float = field(
        default=60.0,
        metadata=_env(
            "NETQUALITY_EVENT_TIME_AHEAD_S",
            "Rollups and alerts drop a level event newer than the stream clock by more than this",
        ),
    )
    """Stats are measured before they are sent, so an event is normally behind the stream
    clock; only a client clock running fast puts it ahead. A minute allows clocks a PC's
    weekly time sync leaves behind (drift of a few seconds a day); further ahead, a room
    would close its minutes (and time its alerts) before the other participants' events."""
    web_port: int = field(
        default=8000, metadata=_env("NETQUALITY_WEB_PORT", "Port of the web API and dashboards")
    )
    # -- operations ------------------------------------------------------------------------------
    metrics_port: int = field(
        default=0,
        metadata=_env(
            "NETQUALITY_METRICS_PORT",
            "Port of this process's Prometheus /metrics endpoint; 0 = off (compose sets 9100)",
        ),
    )
    log_format: str = field(
        default="text",
        metadata=_env(
            "NETQUALITY_LOG_FORMAT", "text (for terminals) or json (one object per line)"
        ),
    )

    # --- clients: HTTP ingest for browsers (pipelines/ingest) ---
    ingest_tokens: str | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_INGEST_TOKENS",
            "Bearer tokens accepted by the HTTP ingest, comma-separated (secret)",
        ),
    )
    ingest_tokens_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_INGEST_TOKENS_FILE", "File with ingest bearer tokens, one per line"
        ),
    )
    ingest_host: str = field(
        default="127.0.0.1",
        metadata=_env("NETQUALITY_INGEST_HOST", "Address `netquality ingest` listens on"),
    )
    ingest_port: int = field(
        default=8100, metadata=_env("NETQUALITY_INGEST_PORT", "Port of `netquality ingest`")
    )
    ingest_max_request_bytes: int = field(
        default=1024 * 1024,
        metadata=_env(
            "NETQUALITY_INGEST_MAX_REQUEST_BYTES", "Largest ingest request body (413 above)"
        ),
    )
    ingest_max_samples: int = field(
        default=500,
        metadata=_env(
            "NETQUALITY_INGEST_MAX_SAMPLES", "Most samples in one ingest request (413 above)"
        ),
    )
    ingest_cors_origins: str = field(
        default="*",
        metadata=_env(
            "NETQUALITY_INGEST_CORS_ORIGINS",
            "Origins allowed to POST from browsers, comma-separated, or *",
        ),
    )

    # -- web: API, live feed and dashboards (pipelines/web) --------------------------------
    web_host: str = field(
        default="127.0.0.1",
        metadata=_env("NETQUALITY_WEB_HOST", "Address the web service listens on (0.0.0.0: all)"),
    )
    web_tokens: str | None = field(
        default=None,
        repr=False,
        metadata=_env(
            "NETQUALITY_WEB_TOKENS",
            "API tokens: token=scope;... with scope *, room:<sid> or region:<name> (secret)",
        ),
    )
    web_tokens_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_WEB_TOKENS_FILE", "File of token=scope lines (alternative to the above)"
        ),
    )
    access_keys: str | None = field(
        default=None,
        repr=False,
        metadata=_env(
            "NETQUALITY_ACCESS_KEYS",
            "Access-token keys kid=secret;... (first signs, all verify; secret)",
        ),
    )
    access_keys_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_ACCESS_KEYS_FILE", "File of kid=secret lines (alternative to the above)"
        ),
    )
    web_max_range_h: float = field(
        default=168.0,
        metadata=_env("NETQUALITY_WEB_MAX_RANGE_H", "Longest time range one query may ask (hours)"),
    )
    web_max_rows: int = field(
        default=5000,
        metadata=_env("NETQUALITY_WEB_MAX_ROWS", "Most rows one API answer returns (then cut)"),
    )
    web_heartbeat_s: float = field(
        default=15.0,
        metadata=_env("NETQUALITY_WEB_HEARTBEAT_S", "Seconds between live-feed heartbeats"),
    )

    # -- alerting (rules: pipelines/quality/alerting/; delivery: pipelines/notify/) --
    alert_rules_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_ALERT_RULES_FILE", "JSON file overriding alert rules (optional)"
        ),
    )
    alert_room_min_share: float | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_ROOM_MIN_SHARE", "Room degraded: share at level <= 2"),
    )
    alert_room_sustain_s: float | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_ROOM_SUSTAIN_S", "Room degraded: seconds before opening"),
    )
    alert_room_resolve_s: float | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_ROOM_RESOLVE_S", "Room degraded: recovered seconds"),
    )
    alert_region_min_share: float | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_REGION_MIN_SHARE", "Region degraded: share at level <= 2"),
    )
    alert_region_min_degraded: int | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_REGION_MIN_DEGRADED", "Region degraded: minimum count"),
    )
    alert_stuck_sustain_s: float | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_STUCK_SUSTAIN_S", "Participant stuck: seconds at <= 1"),
    )
    alert_webhook_urls: str = field(
        default="",
        metadata=_env(
            "NETQUALITY_ALERT_WEBHOOK_URLS", "Comma-separated URLs `netquality notify` POSTs to"
        ),
    )
    alert_webhook_secret: str | None = field(
        default=None,
        metadata=_env("NETQUALITY_ALERT_WEBHOOK_SECRET", "HMAC-SHA256 key for webhook signatures"),
    )
    alert_webhook_secret_file: Path | None = field(
        default=None,
        metadata=_env(
            "NETQUALITY_ALERT_WEBHOOK_SECRET_FILE", "File holding the webhook key (Docker secret)"
        ),
    )
    alert_webhook_max_attempts: int = field(
        default=6,
        metadata=_env(
            "NETQUALITY_ALERT_WEBHOOK_MAX_ATTEMPTS", "Deliveries tried before a dead letter"
        ),
    )
    alert_webhook_backoff_s: float = field(
        default=0.5,
        metadata=_env(
            "NETQUALITY_ALERT_WEBHOOK_BACKOFF_S", "First retry delay; doubles, with jitter"
        ),
    )
    alert_webhook_timeout_s: float = field(
        default=5.0,
        metadata=_env("NETQUALITY_ALERT_WEBHOOK_TIMEOUT_S", "Timeout of one webhook request"),
    )
    notify_group: str = field(
        default="netquality-notify",
        metadata=_env("NETQUALITY_NOTIFY_GROUP", "Consumer group of `netquality notify`"),
    )

    # -- security (reliability/security area): Kafka SASL/TLS; Postgres TLS goes in DATABASE_URL
    # (``?sslmode=verify-full&sslrootcert=/path/ca.pem``). Secrets may come from ``*_FILE``.
    kafka_security_protocol: str = field(
        default="PLAINTEXT",
        metadata=_env(
            "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        ),
    )
    kafka_sasl_mechanism: str | None = field(
        default=None,
        metadata=_env("KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    )
    kafka_sasl_username: str | None = field(
        default=None, metadata=_env("KAFKA_SASL_USERNAME", "SASL user name")
    )
    kafka_sasl_password: str | None = field(
        default=None,
        metadata=_env(
            "KAFKA_SASL_PASSWORD", "SASL password (secret; or KAFKA_SASL_PASSWORD_FILE)"
        ),
    )
    kafka_ssl_cafile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_CAFILE", "CA bundle to verify the brokers")
    )
    kafka_ssl_certfile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_CERTFILE", "Client certificate (mutual TLS)")
    )
    kafka_ssl_keyfile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_KEYFILE", "Client private key (mutual TLS)")
    )

    def __repr__(self) -> str:
        """Like the dataclass repr, with secrets masked: settings end up in logs and tracebacks."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["env"] in REDACTED_ENV and value:
                value = redact_url(value) if f.name == "database_url" else "***"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its environment variable, falling back to the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if (raw is None or raw == "") and f.metadata["env"] in SECRET_ENV:
                raw = _read_secret_file(environ.get(f.metadata["env"] + "_FILE"))
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f, raw)
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (tests and the embedded runtime use this)."""
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[f.metadata["env"]] = str(value)
        return env


SECRET_ENV = frozenset({"KAFKA_SASL_PASSWORD", "DATABASE_URL"})
"""Settings that may hold secrets: also readable from ``<NAME>_FILE`` (Docker/Kubernetes
secrets), never printed by ``repr`` or ``netquality settings``."""

REDACTED_ENV = SECRET_ENV | {
    "NETQUALITY_WEB_TOKENS",
    "NETQUALITY_INGEST_TOKENS",
    "NETQUALITY_ALERT_WEBHOOK_SECRET",
    "NETQUALITY_ACCESS_KEYS",
}
"""Everything ``repr`` masks: the secrets above plus the services' tokens and webhook key
(those have their own ``*_FILE`` settings)."""


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{slash}{path}"


def _read_secret_file(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = str(f.type)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("Path"):
            return Path(raw)
    except ValueError:
        raise ValueError(f"{f.metadata['env']}={raw!r} is not a valid {kind}") from None
    return raw


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in declaration order."""
    return [
        (f.metadata["env"], "" if f.default is None else str(f.default), f.metadata["doc"])
        for f in dataclasses.fields(Settings)
    ]
