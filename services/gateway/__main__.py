"""`python -m services.gateway`: HTTP ingest on GATEWAY_PORT (docs at /docs, /metrics, /healthz).

Starts without Kafka (answers 503 and reports it on /healthz until the broker is back); uvicorn
stops it cleanly on SIGTERM/SIGINT, letting requests in flight finish.
"""

from __future__ import annotations

import uvicorn

from pantau.logging import configure_logging
from pantau.settings import Settings
from services.gateway.app import create_app
from services.gateway.sender import KafkaSender


def main() -> None:
    settings = Settings()
    log = configure_logging(settings, "gateway")
    sender = KafkaSender(settings)
    if not sender.kafka_reachable():
        log.warning("kafka not reachable yet; answering 503 until it is", kafka=settings.kafka_bootstrap_servers)
    log.info(
        "gateway starting",
        port=settings.gateway_port,
        docs=f"http://{settings.service_host}:{settings.gateway_port}/docs",
    )
    uvicorn.run(
        create_app(settings, sender),
        host=settings.service_host,
        port=settings.gateway_port,
        log_config=None,  # structlog's handler on the root logger
        access_log=False,  # pantau_http_requests_total counts requests
    )


if __name__ == "__main__":
    main()
