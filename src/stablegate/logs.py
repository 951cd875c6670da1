"""structlog set-up: JSON in production, console in development; one line per unit of work."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


def _add_pid(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    event["pid"] = os.getpid()
    return event


def configure_logging(
    log_format: str = "console", level: str = "INFO", *, pid: bool = False
) -> None:
    """``pid``: every line names its process, for several processes writing to one log."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            # Plain tracebacks: rich ones print local variables, which may hold secrets.
            colors=False,
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if pid:
        processors.append(_add_pid)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # stdout belongs to command output (--json); logs always go to stderr, looked up at
        # each call so a replaced sys.stderr (test runners, daemons) is honoured.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
