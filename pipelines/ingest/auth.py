"""Bearer tokens of the HTTP ingest: loaded from Settings, compared in constant time.

Tokens are secrets: they are never logged, and a comparison runs ``hmac.compare_digest``
against every configured token (no early exit), so timing says nothing about which token
or how much of one matched.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from pipelines.config import Settings


class NoTokensError(ValueError):
    """The ingest was asked to start without any token: it would accept nobody."""


def load_tokens(settings: Settings) -> list[str]:
    """Tokens from ``NETQUALITY_INGEST_TOKENS`` (comma-separated) and the tokens file.

    The file has one token per line; blank lines and lines starting with ``#`` are skipped.
    """
    tokens = [t.strip() for t in (settings.ingest_tokens or "").split(",") if t.strip()]
    if settings.ingest_tokens_file is not None:
        path = Path(settings.ingest_tokens_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise NoTokensError(
                f"NETQUALITY_INGEST_TOKENS_FILE={path} cannot be read: {exc.strerror}"
            ) from None
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return tokens


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header, else ``None``."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


class BearerTokens:
    """Checks ``Authorization: Bearer <token>`` headers against the configured tokens."""

    def __init__(self, tokens: list[str], *, allow_none: bool = False) -> None:
        if not tokens and not allow_none:
            raise NoTokensError(
                "no ingest tokens configured: set NETQUALITY_INGEST_TOKENS (comma-separated), "
                "NETQUALITY_INGEST_TOKENS_FILE (one per line) or NETQUALITY_ACCESS_KEYS "
                "(participants' access tokens)"
            )
        self._tokens = [t.encode("utf-8") for t in tokens]

    def __repr__(self) -> str:
        return f"BearerTokens(<{len(self._tokens)} tokens>)"

    def allows(self, authorization: str | None) -> bool:
        """Whether the header carries one of the tokens."""
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credentials.strip().encode("utf-8")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        return matched
