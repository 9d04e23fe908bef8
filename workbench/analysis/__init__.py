"""Readers over anything with ``.sql()``: a Session, an EventStore, a Spark session.

``investigate`` answers "what happened to this lead, and why?" (the guide's debugging
scenarios), ``analytics`` "what is happening to many leads?" (the guide's analyses),
``alerts`` "what needs attention now?" (rules over sliding windows), ``business``
the dashboard's key figures, ``explore`` faceted event search, ``live`` a growing
store's newest events and rates. Their SQL keeps to
the subset DuckDB and Spark share (``portable``). None of them masks or builds views:
the reader they are given decides what may be seen.
"""

from . import alerts, analytics, business, explore, investigate, live, portable

__all__ = ["alerts", "analytics", "business", "explore", "investigate", "live", "portable"]
