"""The one Kafka seam outside Faust: aiokafka clients from Settings, and the group loop.

:class:`KafkaClients` builds every aiokafka consumer, producer and admin client, so security
settings are translated in one place (``pipelines.security``) and reach every client the same
way; :func:`run_group` is the commit-after-write loop the sink and the notifier share.
kafka-python stays only in the blocking publisher library (``pipelines.clients.publisher``).
"""

from pipelines.kafka.clients import KafkaClients
from pipelines.kafka.group import GroupWriter, commit_written, run_group

__all__ = ["GroupWriter", "KafkaClients", "commit_written", "run_group"]
