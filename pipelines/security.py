"""Kafka client security from :class:`Settings`: one translation for every Kafka client.

Secrets come from the environment (or ``*_FILE`` files, see ``pipelines.config``), never from
code. :func:`kafka_client_config` is for kafka-python (file names for TLS), which only the
blocking publisher library uses; :func:`aiokafka_client_config` is for aiokafka (an
``ssl.SSLContext`` instead), used only by the client factory ``pipelines.kafka.KafkaClients``
that builds every aiokafka client; Faust's credentials come from these settings in the seam
(``pipelines.streaming.faust.credentials``), the one place that imports Faust. Postgres
TLS needs nothing here: libpq reads ``sslmode`` / ``sslrootcert`` / ``sslcert`` / ``sslkey``
from ``DATABASE_URL``'s query.
"""

from __future__ import annotations

import ssl
from typing import Any

from pipelines.config import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SecuritySettingsError(ValueError):
    """Security settings that cannot work together; the message names the variable to fix."""


def _check(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise SecuritySettingsError(
            f"KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of {', '.join(PROTOCOLS)}"
        )
    if protocol.startswith("SASL"):
        mechanism = (settings.kafka_sasl_mechanism or "").upper()
        if mechanism not in MECHANISMS:
            raise SecuritySettingsError(
                f"KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism!r}: with {protocol} use "
                f"one of {', '.join(MECHANISMS)}"
            )
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise SecuritySettingsError(
                f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD "
                "(or KAFKA_SASL_PASSWORD_FILE)"
            )
    if bool(settings.kafka_ssl_certfile) != bool(settings.kafka_ssl_keyfile):
        raise SecuritySettingsError("set both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE, or neither")
    return protocol


def kafka_client_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (pure, no file access).

    Empty for PLAINTEXT, so passing ``**kafka_client_config(settings)`` is always safe.
    """
    protocol = _check(settings)
    if protocol == "PLAINTEXT":
        return {}
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        config["sasl_mechanism"] = (settings.kafka_sasl_mechanism or "").upper()
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password
    if protocol.endswith("SSL"):
        for key, value in (
            ("ssl_cafile", settings.kafka_ssl_cafile),
            ("ssl_certfile", settings.kafka_ssl_certfile),
            ("ssl_keyfile", settings.kafka_ssl_keyfile),
        ):
            if value:
                config[key] = str(value)
    return config


def aiokafka_client_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer``/``AIOKafkaProducer`` (TLS as a context)."""
    config = {k: v for k, v in kafka_client_config(settings).items() if not k.startswith("ssl_")}
    context = kafka_ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for aiokafka/Faust, or None when the protocol has no TLS."""
    protocol = _check(settings)
    if not protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context
