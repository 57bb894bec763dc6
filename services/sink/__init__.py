"""The sink: events from the five topics -> TimescaleDB (pantau.storage), offsets committed only
after the database commit. `python -m services.sink`."""
