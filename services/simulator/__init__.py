"""The simulator service: paces pantau.simulation against the wall clock and produces its events."""
