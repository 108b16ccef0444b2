"""netquality: server-side Network Quality Levels (0-5) for video-call participants.

The public API lives here; internals live in the sub-packages:

- ``pipelines.contracts``: the message contracts (msgspec models mirroring ``schemas/``)
- ``pipelines.quality``: the pure scoring core (no I/O)
- ``pipelines.adapters``: getStats / rtcstats dumps to samples
"""

__version__ = "0.1.0"
