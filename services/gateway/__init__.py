"""The HTTP ingest gateway: partners that cannot speak Kafka POST contract events here."""
