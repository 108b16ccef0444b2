"""Kafka security settings as Faust's ``broker_credentials`` (the rest of the translation,
for every other Kafka client, is :mod:`pipelines.security`)."""

from __future__ import annotations

from typing import Any

import faust

from pipelines.config import Settings
from pipelines.security import kafka_client_config, kafka_ssl_context


def faust_broker_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for ``faust.App``: None for PLAINTEXT."""
    protocol = kafka_client_config(settings).get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(settings)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=(settings.kafka_sasl_mechanism or "").upper(),
            ssl_context=context,
        )
    return faust.SSLCredentials(context)
