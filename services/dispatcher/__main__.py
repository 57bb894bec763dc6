"""`python -m services.dispatcher`: deliver alert lifecycle events to subscribed webhooks.

Serves /metrics and /healthz on DISPATCHER_PORT; stops cleanly on SIGTERM/SIGINT (the round in
flight finishes, offsets already stored stay committed; anything not yet queued is re-read).
"""

from __future__ import annotations

import asyncio
import signal

from psycopg_pool import AsyncConnectionPool

from pantau.contracts import ALERT_TOPIC, DEADLETTER_TOPIC
from pantau.db import wait_for_schema
from pantau.kafka import wait_for_topics
from pantau.logging import configure_logging
from pantau.metrics import serve_metrics
from pantau.settings import Settings
from services.dispatcher.service import Dispatcher


async def serve(settings: Settings) -> None:
    log = configure_logging(settings, "dispatcher")
    await asyncio.to_thread(wait_for_topics, settings, [ALERT_TOPIC, DEADLETTER_TOPIC])
    await asyncio.to_thread(wait_for_schema, settings)
    async with AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    ) as pool:
        await pool.wait()
        dispatcher = Dispatcher(settings, pool)
        server = serve_metrics(settings.service_host, settings.dispatcher_port, dispatcher.healthy, "DISPATCHER_PORT")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, dispatcher.stop)
        log.info("dispatcher started", port=settings.dispatcher_port, topic=ALERT_TOPIC)
        try:
            await dispatcher.run()
        finally:
            server.shutdown()
            log.info("dispatcher stopped")


def main() -> None:
    asyncio.run(serve(Settings()))


if __name__ == "__main__":
    main()
