"""Where :class:`MetricsMonitor` used to live; it is :mod:`seqopt_core.monitor` now."""

from seqopt_core.monitor import MetricsMonitor

__all__ = ["MetricsMonitor"]
