"""Pure detection logic: price spikes, supply gaps, route disruptions, and the alert lifecycle.

No I/O here: processors feed observations in and publish what comes out.
"""
