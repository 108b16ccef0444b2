"""``netquality bench``: every throughput figure of issue 6, each beside a baseline of the same run.

Sections (``--sections``, default all): ``engine`` (pure scoring, benchmarks/engine.py),
``drain`` (one worker empties a pre-filled stats topic of batch envelopes, and of bare
samples; baseline: a bare aiokafka consumer on the same topic), ``latency`` (produce ->
level event at a fixed offered load; baseline: produce -> consume of the same messages by a
bare consumer), ``sink`` (benchmarks/sink.py), ``memory`` (worker RSS per active participant;
baseline: the idle worker) and ``scale`` (drain with 1 and 2 worker processes).

Prints ONE JSON document on stdout and writes a Markdown table (path in the JSON, also said on
stderr); progress goes to stderr. Kafka sections share one broker (embedded Tansu through
``Runtime`` unless ``KAFKA_BOOTSTRAP_SERVERS`` is set); every measurement uses fresh topics
and a fresh consumer group.

The modules, one concern each: :mod:`.sizes` (sections and sizes), :mod:`.inputs` (the
simulator's samples as messages: :func:`.inputs.bench_samples` is the one place to swap in
another source without touching the measurements), :mod:`.broker` (the bench's own Kafka
clients), :mod:`.processes` (worker processes, their CPU and RSS), :mod:`.backlog` (one drain
measurement), :mod:`.sections`, :mod:`.latency` and :mod:`.memory` (the sections),
:mod:`.run` (one run), :mod:`.report` (the Markdown table), :mod:`.progress` (stderr) and
:mod:`.command` (the command line). They import :mod:`pipelines`; ``pipelines`` reaches them
only through its thin entry point, ``pipelines/bench.py``.
"""
