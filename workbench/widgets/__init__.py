"""Investigate by clicking: ipywidgets views over a Session, one module each.

``LeadTimeline`` (one lead, the way a trace viewer shows a trace), ``EventExplorer``
(filters, facets, events over time, a page of events at a time), ``Dashboard`` (the
business at a glance), ``AlertMonitor`` (the guide's monitoring rules, live) and
``LiveFeed`` (events as a stream lands them). Each is a thin view: it calls the
Session and ``analysis/``, and everything a click does is a method too.
"""

from .dashboard import Dashboard
from .explorer import EventExplorer
from .live import LiveFeed
from .monitor import AlertMonitor
from .timeline import LeadTimeline

__all__ = ["LeadTimeline", "EventExplorer", "Dashboard", "AlertMonitor", "LiveFeed"]
