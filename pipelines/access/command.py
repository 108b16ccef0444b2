"""``netquality token --room RM1 --participant PA1 --ttl 1h``: mint one access token.

For an app's server that is not written in Python, or for trying things out; servers in
Python call :func:`pipelines.access.mint_access_token` directly.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipelines.access.tokens import (
    SigningKeysError,
    load_signing_keys,
    mint_access_token,
    parse_ttl,
)


def add_token_parser(sub: Any) -> None:
    """Register the ``token`` sub-command on the ``netquality`` parser's sub-parsers."""
    token = sub.add_parser(
        "token",
        help="mint a participant's access token (signed JWT) for the browser SDK",
        description="Print a signed, expiring access token naming one room and one "
        "participant, signed with the first key of NETQUALITY_ACCESS_KEYS (or _FILE). With it "
        "a browser may post its own stats and read its room's feed.",
    )
    token.add_argument("--room", required=True, help="roomSid the token is for")
    token.add_argument("--participant", required=True, help="participantSid the token is for")
    token.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h (default), max 24h")
    token.set_defaults(handler=run_token)


def run_token(args: argparse.Namespace) -> int:
    from pipelines.config import Settings  # noqa: PLC0415

    try:
        settings = Settings.from_env()
        keys = load_signing_keys(settings.access_keys, settings.access_keys_file)
        if keys is None:
            raise SigningKeysError(
                "no signing key: set NETQUALITY_ACCESS_KEYS=kid=secret (or _FILE)"
            )
        token = mint_access_token(
            keys, room_sid=args.room, participant_sid=args.participant, ttl_s=parse_ttl(args.ttl)
        )
    except ValueError as exc:  # SigningKeysError too: one line, no traceback
        print(f"netquality token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0
