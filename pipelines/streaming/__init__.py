"""Kafka faces of netquality: the Faust app, topic management, levels agent."""
