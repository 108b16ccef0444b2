"""Signed, expiring access tokens naming one room and one participant (like Twilio's).

An app's server mints a token per participant (:func:`mint_access_token`, or ``netquality
token --room RM1 --participant PA1 --ttl 1h``) and hands it to that participant's browser. With
it the browser may post stats samples for itself only (the ingest answers 403 for another room
or participant) and read its own room's feed and API; no operator token reaches a browser.

Format: a JWT (RFC 7519) signed with HS256 by PyJWT. Claims: ``iss`` = ``netquality``,
``sub`` = participantSid, ``room`` = roomSid, ``iat``, ``nbf``, ``exp``, ``jti``; the header's
``kid`` names the signing key. Rotation: ``NETQUALITY_ACCESS_KEYS`` lists ``kid=secret``
pairs; the FIRST signs new tokens, every listed key verifies, so a new key goes first and the
old one stays listed until the last token it signed has expired (at most :data:`MAX_TTL_S`).

Verification is pure (the clock is a parameter) and never says more than a one-line reason.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

ISSUER = "netquality"
ALGORITHM = "HS256"

MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""

MAX_TTL_S = 24 * 3600
"""A browser token lives for a call, not for days (Twilio caps access tokens at 24 h); this also
bounds how long a retired key must stay listed after a rotation."""

CLOCK_SKEW_S = 30
"""Tolerance between the minting server's and this service's clocks (NTP keeps them within
a second; 30 s absorbs a badly kept laptop without making an expired token live long)."""

MAX_SID = 128
"""Same limit as the API's path parameters and the stats contract's sids."""

_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SigningKeysError(ValueError):
    """The operator's key configuration is malformed (the message never contains a secret)."""


class AccessTokenError(ValueError):
    """A presented token is not acceptable; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a verified token grants: one participant of one room, until ``expires_at``."""

    room_sid: str
    participant_sid: str
    expires_at: int
    key_id: str


@dataclass(frozen=True)
class SigningKeys:
    """Keys by id; the first one signs. ``repr`` shows ids only."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise SigningKeysError("no access-token keys: set NETQUALITY_ACCESS_KEYS")

    def __repr__(self) -> str:
        return f"SigningKeys(kids={[kid for kid, _ in self.keys]})"

    @property
    def signing(self) -> tuple[str, bytes]:
        return self.keys[0]

    def get(self, kid: str) -> bytes | None:
        for known, secret in self.keys:
            if known == kid:
                return secret
        return None

    @classmethod
    def parse(cls, text: str, source: str) -> SigningKeys:
        """``kid=secret`` pairs separated by ``;`` or newlines; ``#`` lines are comments."""
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        entries = [e.strip() for ln in lines for e in ln.split(";") if e.strip()]
        keys: list[tuple[str, bytes]] = []
        for n, entry in enumerate(entries, 1):
            kid, sep, secret = entry.partition("=")
            kid, secret = kid.strip(), secret.strip()
            where = f"{source} entry {n}"
            if not sep or not _KID.match(kid):
                raise SigningKeysError(
                    f"{where}: expected kid=secret with a kid of letters, digits, . _ -"
                )
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise SigningKeysError(
                    f"{where} ({kid}): the secret is shorter than {MIN_SECRET_BYTES} bytes; "
                    "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            if any(kid == k for k, _ in keys):
                raise SigningKeysError(f"{where}: kid {kid} is listed twice")
            keys.append((kid, secret.encode()))
        return cls(tuple(keys))


def load_signing_keys(inline: str | None, file: Path | None) -> SigningKeys | None:
    """Keys from ``NETQUALITY_ACCESS_KEYS`` then ``NETQUALITY_ACCESS_KEYS_FILE``; None if unset."""
    text, source = "", []
    if inline:
        text += inline + "\n"
        source.append("NETQUALITY_ACCESS_KEYS")
    if file is not None:
        try:
            text += Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SigningKeysError(
                f"NETQUALITY_ACCESS_KEYS_FILE {file}: {exc.strerror}"
            ) from None
        source.append(f"NETQUALITY_ACCESS_KEYS_FILE {file}")
    if not source:
        return None
    return SigningKeys.parse(text, " + ".join(source))


def parse_ttl(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``1d`` -> seconds (1 s to :data:`MAX_TTL_S`)."""
    match = _TTL.match(text)
    if not match:
        raise ValueError(f"ttl {text!r}: use seconds or a number with s, m, h or d (e.g. 1h)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= seconds <= MAX_TTL_S:
        raise ValueError(f"ttl {text!r}: must be between 1 s and {MAX_TTL_S // 3600} h")
    return seconds


def _check_sid(name: str, value: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SID:
        raise ValueError(f"{name} must be 1 to {MAX_SID} characters")


def mint_access_token(
    keys: SigningKeys,
    *,
    room_sid: str,
    participant_sid: str,
    ttl_s: int = 3600,
    now: float | None = None,
) -> str:
    """A token for one participant of one room, signed with the first key."""
    _check_sid("room_sid", room_sid)
    _check_sid("participant_sid", participant_sid)
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    issued = int(time.time() if now is None else now)
    kid, secret = keys.signing
    claims = {
        "iss": ISSUER,
        "sub": participant_sid,
        "room": room_sid,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def looks_like_access_token(token: str | None) -> bool:
    """A JWT has three dot-separated parts; operator tokens are opaque strings without dots."""
    return bool(token) and token.count(".") == 2  # type: ignore[union-attr]


def verify_access_token(keys: SigningKeys, token: str, *, now: float | None = None) -> AccessToken:
    """The grant of a valid token, else :class:`AccessTokenError` with a one-line reason."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AccessTokenError("the access token is malformed") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        raise AccessTokenError(f"the access token must be signed with {ALGORITHM}")
    secret = keys.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise AccessTokenError("the access token was signed with an unknown key (kid)")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # Times are checked below against the injectable clock.
            options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False,
                     "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        raise AccessTokenError("the access token's signature does not match") from None
    except jwt.PyJWTError as exc:
        raise AccessTokenError(f"the access token is invalid: {exc}") from None
    clock = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int) or not isinstance(nbf, int):
        raise AccessTokenError("the access token's times are not integers")
    if clock > exp + CLOCK_SKEW_S:
        raise AccessTokenError("the access token has expired: ask the app's server for a new one")
    if clock < nbf - CLOCK_SKEW_S:
        raise AccessTokenError("the access token is not valid yet (check the minting clock)")
    room, participant = claims.get("room"), claims.get("sub")
    if not isinstance(room, str) or not isinstance(participant, str) or not room or not participant:
        raise AccessTokenError("the access token names no room or participant")
    return AccessToken(room, participant, exp, kid)  # type: ignore[arg-type]
