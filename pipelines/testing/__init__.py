"""Test support: scripted participants (:mod:`.participants`), a scripted SFU room for the
attribution tests (:mod:`.room`) and a harness that drives a stage's processor without Faust
or a broker (:mod:`.stages`)."""

from pipelines.testing.participants import (
    AUDIO_BITRATE,
    AUDIO_PACKET_RATE,
    VIDEO_PACKET_BYTES,
    Conditions,
    ScriptedParticipant,
    random_stream,
    scripted_session,
)

__all__ = [
    "AUDIO_BITRATE",
    "AUDIO_PACKET_RATE",
    "VIDEO_PACKET_BYTES",
    "Conditions",
    "ScriptedParticipant",
    "random_stream",
    "scripted_session",
]
