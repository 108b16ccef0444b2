"""``netquality simulate``: a fleet of calls on real network traces, as stats samples.

Pure core: :mod:`traces` (real capacity traces), :mod:`network` (loss, RTT, jitter models),
:mod:`scenario` (rooms, participants, scripted events), :mod:`generator` (samples).
Adapters: :mod:`outputs` (Kafka, JSON lines) and :mod:`runner` (pacing).
"""

from pipelines.simulate.generator import DEFAULT_START_MS, Simulation
from pipelines.simulate.scenario import Scenario, ScriptedEvent, default_scenario

__all__ = ["DEFAULT_START_MS", "Scenario", "ScriptedEvent", "Simulation", "default_scenario"]
