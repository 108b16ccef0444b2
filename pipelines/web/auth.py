"""Bearer tokens scoped to a room, a region or everything (pure: no I/O, no web framework).

The operator configures tokens as ``token=scope[,scope...]`` pairs separated by ``;`` (or one
pair per line in a file), where a scope is ``*``, ``room:<roomSid>`` or ``region:<region>``.
A region scope covers every room of that region. Lookups compare the presented token with
*every* configured token using :func:`hmac.compare_digest`, so neither the answer nor the time
it takes tells an attacker how much of a guess was right, and tokens never appear in
``repr``/logs (the :class:`Grant` keeps only a fingerprint).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MIN_TOKEN_LENGTH = 16
"""128 bits of a random base64/hex token; shorter ones are guessable and refused at start."""


class TokenConfigError(ValueError):
    """The operator's token configuration is malformed (the message never contains a token)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token may read. ``label`` is a short fingerprint for logs, never the token."""

    label: str
    everything: bool = False
    rooms: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)
    participant: str | None = None
    """Set for a participant's access token (:mod:`pipelines.access`): one room, one participant."""

    def covers_region(self, region: str) -> bool:
        return self.everything or region in self.regions

    def covers_room(self, room_sid: str, region: str | None) -> bool:
        """A room is covered by ``*``, its own scope, or its region's (when the region is known)."""
        if self.everything or room_sid in self.rooms:
            return True
        return region is not None and region in self.regions

    @property
    def scopes(self) -> list[str]:
        if self.everything:
            return ["*"]
        return [f"region:{r}" for r in sorted(self.regions)] + [
            f"room:{r}" for r in sorted(self.rooms)
        ]


def fingerprint(token: str) -> str:
    """First 8 hex chars of SHA-256: tells tokens apart in logs without revealing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def parse_scopes(text: str, where: str) -> tuple[bool, frozenset[str], frozenset[str]]:
    everything, rooms, regions = False, set(), set()
    for raw in text.split(","):
        scope = raw.strip()
        if scope == "*":
            everything = True
        elif scope.startswith("room:") and scope[5:].strip():
            rooms.add(scope[5:].strip())
        elif scope.startswith("region:") and scope[7:].strip():
            regions.add(scope[7:].strip())
        else:
            raise TokenConfigError(
                f"{where}: scope {scope!r} is not '*', 'room:<roomSid>' or 'region:<name>'"
            )
    return everything, frozenset(rooms), frozenset(regions)


def parse_tokens(text: str, source: str) -> dict[str, Grant]:
    """``tokenA=*;tokenB=room:RM1;tokenC=region:eu-west,room:RM9`` (``;`` or newlines)."""
    grants: dict[str, Grant] = {}
    # Comment lines are dropped before splitting on ";", which a comment may well contain.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    entries = [e.strip() for line in lines for e in line.split(";")]
    for n, entry in enumerate(entries, 1):
        if not entry:
            continue
        token, sep, scopes = entry.partition("=")
        token = token.strip()
        where = f"{source} entry {n}"
        if not sep:
            raise TokenConfigError(f"{where}: expected token=scope")
        if len(token) < MIN_TOKEN_LENGTH:
            raise TokenConfigError(
                f"{where}: the token is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        everything, rooms, regions = parse_scopes(scopes, where)
        grants[token] = Grant(fingerprint(token), everything, rooms, regions)
    return grants


class TokenRegistry:
    """The configured tokens; :meth:`lookup` is constant-time in the token's content."""

    def __init__(self, grants: dict[str, Grant]) -> None:
        self._entries = [(t.encode(), g) for t, g in grants.items()]

    @classmethod
    def from_sources(cls, inline: str | None, file: Path | None) -> TokenRegistry:
        grants: dict[str, Grant] = {}
        if inline:
            grants.update(parse_tokens(inline, "NETQUALITY_WEB_TOKENS"))
        if file is not None:
            try:
                content = Path(file).read_text()
            except OSError as exc:
                raise TokenConfigError(
                    f"NETQUALITY_WEB_TOKENS_FILE {file}: {exc.strerror}"
                ) from None
            grants.update(parse_tokens(content, f"NETQUALITY_WEB_TOKENS_FILE {file}"))
        return cls(grants)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenRegistry({len(self._entries)} tokens)"

    def lookup(self, presented: str | None) -> Grant | None:
        """The grant of ``presented``, comparing against every token (no early exit)."""
        if not presented:
            return None
        candidate = presented.encode()
        found: Grant | None = None
        for token, grant in self._entries:
            if hmac.compare_digest(candidate, token):
                found = grant
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def regions_visible(grant: Grant, regions: Iterable[str]) -> list[str]:
    return [r for r in regions if grant.covers_region(r)]
