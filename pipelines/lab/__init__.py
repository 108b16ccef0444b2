"""The impairment lab: real browsers in a call through a userspace network relay, scored.

``impairment`` is the pure per-packet model (seedable, no sockets); ``relay`` puts it on UDP;
``profile`` says what to apply when; ``sdp`` splices the relay into ICE; ``clip`` makes the
camera clip; ``call`` drives the browsers; ``pipeline`` starts (or finds) the pipeline and
reads the levels back; ``record`` writes the rtcstats dump; ``report`` the timeline, JSON and
chart; ``expect`` checks a timeline against level bands; ``options`` and ``command`` are
``netquality lab``.
"""
