"""Alert delivery: webhooks (``netquality notify``) and the terminal tail (``netquality alerts``).

The rules live in ``pipelines.quality.alerting`` and the agent in ``pipelines.streaming.alerts``;
this package only moves ``netquality.alert.v1`` messages from the alerts topic to people.
"""
