"""`python -m services.api`: serve the query API on API_PORT (docs at /docs, /metrics, /healthz).

Administration, without the HTTP admin routes:
  python -m services.api create-key --name "PT Sumber Pangan Jaya"   prints the new API key once
  python -m services.api list-keys
  python -m services.api revoke-key KEY_ID
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg
import uvicorn

from pantau.db import wait_for_schema
from pantau.logging import configure_logging
from pantau.settings import Settings
from pantau.subscriptions import store
from services.api.app import create_app


def serve(settings: Settings) -> None:
    log = configure_logging(settings, "api")
    wait_for_schema(settings)
    log.info("api starting", port=settings.api_port, docs=f"http://{settings.service_host}:{settings.api_port}/docs")
    # uvicorn handles SIGTERM/SIGINT: open requests finish, the lifespan closes the pool and consumer.
    uvicorn.run(
        create_app(settings),
        host=settings.service_host,
        port=settings.api_port,
        log_config=None,  # keep structlog's handler on the root logger
        access_log=False,  # pantau_http_requests_total counts requests
        timeout_graceful_shutdown=5,  # open SSE streams would otherwise hold shutdown forever
    )


async def _admin(settings: Settings, command: str, args: argparse.Namespace) -> int:
    async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=False) as conn:
        if command == "create-key":
            new, key = await store.create_key(conn, args.name)
            await conn.commit()
            print(f"API key for {key.name} (key id {key.key_id}); shown once, store it now:", file=sys.stderr)
            print(new.key)
        elif command == "list-keys":
            for key in await store.list_keys(conn):
                state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
                print(f"{key.key_id}\t{key.created_at.isoformat()}\t{state}\t{key.name}")
        elif command == "revoke-key":
            key = await store.revoke_key(conn, args.key_id)
            await conn.commit()
            if key is None:
                print(f"no API key with id {args.key_id!r}; see `python -m services.api list-keys`", file=sys.stderr)
                return 1
            print(f"revoked {key.key_id} ({key.name})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.api", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    create = sub.add_parser("create-key", help="issue an API key for a distributor")
    create.add_argument("--name", required=True, help="the distributor, e.g. 'PT Sumber Pangan Jaya'")
    sub.add_parser("list-keys", help="list API keys (ids and names, never the keys)")
    revoke = sub.add_parser("revoke-key", help="revoke an API key")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command is None:
        serve(settings)
        return 0
    if args.command == "create-key" and not args.name.strip():
        parser.error("--name must not be blank")
    configure_logging(settings, "api")
    wait_for_schema(settings)
    return asyncio.run(_admin(settings, args.command, args))


if __name__ == "__main__":
    sys.exit(main())
