"""Splicing the relay into ICE by rewriting session descriptions.

Remove every ``a=candidate`` (and ``a=end-of-candidates``) line, then add one host candidate
per media section pointing at the relay's port for that browser. With any real candidate left,
ICE finds the direct loopback pair and bypasses the relay (issue 23's feasibility run); the
caller must also never pass trickled candidates on.
"""

from __future__ import annotations

RELAY_PRIORITY = 2130706431
"""RFC 8445 5.1.2.1 priority of a host candidate with local preference 65535, component 1."""


def relay_candidate(port: int, host: str = "127.0.0.1") -> str:
    return f"a=candidate:1 1 udp {RELAY_PRIORITY} {host} {port} typ host"


def splice(sdp: str, port: int, host: str = "127.0.0.1") -> str:
    """``sdp`` with its candidates replaced by the relay's, one per ``m=`` section.

    With BUNDLE every section shares one transport, so one candidate each is harmless and
    keeps unbundled peers working. Line endings stay CRLF, as RFC 8866 requires.
    """
    out: list[str] = []
    in_media = False
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith(("a=candidate:", "a=end-of-candidates")):
            continue
        if line.startswith("m="):
            if in_media:
                out.extend([relay_candidate(port, host), "a=end-of-candidates"])
            in_media = True
        if line:
            out.append(line)
    if in_media:
        out.extend([relay_candidate(port, host), "a=end-of-candidates"])
    return "\r\n".join(out) + "\r\n"


def candidates(sdp: str) -> list[str]:
    return [line.strip() for line in sdp.splitlines() if line.startswith("a=candidate:")]
