"""The pure scoring core: counters to rates, metric scores, smoothing, participant state.

Nothing here does I/O or imports Faust, Kafka, SQLAlchemy or a web stack; adapters call in.
The hot path may run compiled (mypyc, built at install; ``COMPILED`` says so): the ``.py``
files are the reference and run instead whenever the build is missing, failed or is older
than they are, or ``NETQUALITY_PURE_PYTHON=1`` is set (see ``_native``).
"""

# First: decides whether the modules below load compiled or from source (see _native).
from pipelines.quality._native import COMPILED  # isort: skip
from pipelines.quality.engine import Engine, EngineCounts
from pipelines.quality.state import ParticipantState, dump_state, load_state
from pipelines.quality.thresholds import DEFAULT_THRESHOLDS, Thresholds, load_thresholds

__all__ = [
    "COMPILED",
    "DEFAULT_THRESHOLDS",
    "Engine",
    "EngineCounts",
    "ParticipantState",
    "Thresholds",
    "dump_state",
    "load_state",
    "load_thresholds",
]
