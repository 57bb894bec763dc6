"""The alert dispatcher: pangan.alert.v1 -> an outbox in PostgreSQL -> signed webhooks to distributors."""
