"""Structured logs: JSON lines for machines (files, containers), key=value colours on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

from pantau.settings import Settings


def configure_logging(settings: Settings, service: str) -> structlog.stdlib.BoundLogger:
    """Configure structlog and stdlib logging once per process; returns the service's logger."""
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Library loggers (aiokafka, kafka-python, uvicorn, faust) go through the same renderer.
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("kafka", "aiokafka", "kafka.conn", "kafka.coordinator"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return structlog.get_logger(service=service)
