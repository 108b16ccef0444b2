"""The impairment lab: real browsers in a call through a userspace network relay, scored.

``impairment`` is the pure per-packet model (seedable, no sockets); ``relay`` puts it on UDP;
``profile`` says what to apply when; ``sdp`` splices the relay into ICE; ``call`` drives the
browsers; ``record`` writes the rtcstats dump; ``report`` the timeline, JSON and chart;
``command`` is ``netquality lab``.
"""
