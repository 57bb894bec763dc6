"""The importer CLI: replays real price files into pangan.price.v1 with their original event time."""
