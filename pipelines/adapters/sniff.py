"""Which input format a file looks like, from its first line: the hint behind "add --format".

Pure and cheap: one line is decoded, nothing else is read. A guess is only made when the line
is unmistakable (an rtcstats ``[method, ...]`` line, a sample with its ``participantSid``, a
getStats report or the first line of a pretty-printed one); otherwise the answer is ``None``
and the chosen format's own errors speak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pipelines.contracts.codec import ContractError, decode_json

InputFormat = Literal["samples", "rtcstats", "getstats"]

DESCRIPTIONS: dict[InputFormat, str] = {
    "samples": "netquality.stats.v1 JSON lines",
    "rtcstats": "an rtcstats dump",
    "getstats": "a getStats report",
}


def first_line(head: bytes) -> bytes | None:
    """The first non-blank line of ``head``, stripped (a cut-off one then fails to decode)."""
    return next((line.strip() for line in head.splitlines() if line.strip()), None)


def guess_format(head: bytes) -> InputFormat | None:
    """The format the start of an input (its first few KiB) unmistakably has, if any."""
    line = first_line(head)
    if line is None:
        return None
    if line in (b"[", b"{"):
        return "getstats"  # a pretty-printed report; samples and dump lines are one line each
    try:
        value = decode_json(line)
    except ContractError:
        return None
    if isinstance(value, list) and value:
        if isinstance(value[0], str):
            return "rtcstats"
        if all(isinstance(item, Mapping) and ("type" in item or "value" in item) for item in value):
            return "getstats"
    if isinstance(value, Mapping):
        if "participantSid" in value or value.get("schema") == "netquality.stats.v1":
            return "samples"
        stats = [v for v in value.values() if isinstance(v, Mapping)]
        if stats and all("type" in v for v in stats):
            return "getstats"
    return None
