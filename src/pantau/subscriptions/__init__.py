"""Distributor subscriptions, pure domain: API keys (stored hashed), which alert lifecycle events a
subscription receives, webhook signing (HMAC-SHA256 over "timestamp.body"), the retry schedule and
per-key rate limits. No I/O here: the API and the dispatcher wire these to PostgreSQL, Kafka and HTTP.
"""
