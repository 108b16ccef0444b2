"""Analysts' face: historical quality as polars DataFrames, reports with plots, exports.

The public API is re-exported here; see :mod:`pipelines.analytics.history`.
"""

from pipelines.analytics.fetch import QueryRunner, adbc_available
from pipelines.analytics.history import METRICS, QualityHistory
from pipelines.analytics.timerange import TimeRange, parse_time

__all__ = ["METRICS", "QualityHistory", "QueryRunner", "TimeRange", "adbc_available", "parse_time"]
