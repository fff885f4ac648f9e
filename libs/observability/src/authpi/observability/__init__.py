"""structlog set-up: console output in a terminal, JSON otherwise; context binding helpers."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars

__all__ = [
    "REQUEST_ID",
    "bind_contextvars",
    "clear_contextvars",
    "configure_logging",
    "get_logger",
]

# The request being answered (set by the request-context layer of each port, authpi.web.app).
# Log lines take it from here when they are written, so a request pays nothing for it unless it
# logs.
REQUEST_ID: ContextVar[str | None] = ContextVar("authpi_request_id", default=None)


def add_request_id(
    _logger: Any, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    if "request_id" not in event:
        rid = REQUEST_ID.get()
        if rid is not None:
            event["request_id"] = rid
    return event


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
