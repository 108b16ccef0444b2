"""What the two room stages (rollups, alerting) share, pure: no clock, no I/O.

* :mod:`~pipelines.quality.room.level`: the record they read (:class:`RoomLevel`);
* :mod:`~pipelines.quality.room.codec`: their table encodings and the peeks at them;
* :mod:`~pipelines.quality.room.sums`: the running sums a region keeps beside its state;
* :mod:`~pipelines.quality.room.logic`: the per-key protocol a generic room stage drives.

Nothing is imported here, so that the stages' own packages can import these modules while
their adapters (``rollups.logic``, ``alerting.logic``) import them back.
"""
