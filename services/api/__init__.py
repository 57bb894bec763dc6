"""The query API: prices, supply, alerts, reference data; distributors' subscriptions, their
delivery log and a live alert stream (Server-Sent Events). `create_app(settings)` builds it."""
