"""Access tokens: what an app's server mints so one browser may publish and read one room."""

from pipelines.access.tokens import (
    AccessToken,
    AccessTokenError,
    SigningKeys,
    SigningKeysError,
    load_signing_keys,
    looks_like_access_token,
    mint_access_token,
    parse_ttl,
    verify_access_token,
)

__all__ = [
    "AccessToken",
    "AccessTokenError",
    "SigningKeys",
    "SigningKeysError",
    "load_signing_keys",
    "looks_like_access_token",
    "mint_access_token",
    "parse_ttl",
    "verify_access_token",
]
