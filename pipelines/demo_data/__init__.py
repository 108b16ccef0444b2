"""Real browser dumps shipped with the package (package data, read through importlib.resources).

The offline demo (``netquality demo --offline``) scores them and the calibration suite checks
its real-call bands on them, so they must be in an installed wheel, not only in a checkout;
the tests read the same copies. Provenance and licences: ``ATTRIBUTION.md`` beside them.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

RTCSTATS: Traversable = resources.files(__name__) / "rtcstats"
"""jitsi rtcstats-server dumps of real Chrome, Firefox and Safari calls, one call per file."""
