"""Log lines for a run: a run id on every line, text or JSON, and no secrets.

:func:`configure_logging` installs one handler on the root logger. Its filters stamp
each record with the current run id (a context variable that :func:`run_scope` binds,
and :func:`migrate` binds for its run) and redact passwords in connection strings,
in messages and tracebacks alike: a safety net behind the redaction done at the source.

Worker threads and processes do not share the coordinator's context: the cluster hands
them a :class:`WorkerLogging` (in the ``WorkerJob``) that they apply when they start,
so their lines carry the same run id, in the same format.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TextIO, TypeVar

from migrationkit._redact import redact_uri

LogFormat = Literal["text", "json"]

P = ParamSpec("P")
T = TypeVar("T")

#: The run the current code works for; ``None`` outside a run.
RUN_ID: ContextVar[str | None] = ContextVar("migrationkit_run_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s run=%(run_id)s %(name)s: %(message)s"
#: Our handler's name on the root logger, so configuring again replaces it.
HANDLER_NAME = "migrationkit"

# A worker process's run id, for threads that drivers start there without our context.
_process_run_id: str | None = None
# What configure_logging last installed in this process (worker processes copy it).
_configured_format: LogFormat | None = None


def new_run_id() -> str:
    """Twelve hex digits: short enough to read in a log line, unique enough for a run."""
    return uuid.uuid4().hex[:12]


def current_run_id() -> str | None:
    return RUN_ID.get() or _process_run_id


@contextmanager
def run_scope(run_id: str | None = None) -> Iterator[str]:
    """Bind a run id for the code inside; an enclosing run's id is kept unless one is given."""
    chosen = run_id or RUN_ID.get() or new_run_id()
    token = RUN_ID.set(chosen)
    try:
        yield chosen
    finally:
        RUN_ID.reset(token)


def with_run_id(
    function: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run the coroutine function inside :func:`run_scope` (one run id per call)."""

    @functools.wraps(function)
    async def in_a_run(*args: P.args, **kwargs: P.kwargs) -> T:
        with run_scope():
            return await function(*args, **kwargs)

    return in_a_run


class RunIdFilter(logging.Filter):
    """Stamp ``record.run_id`` ("-" outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = current_run_id() or "-"
        return True


class RedactingFilter(logging.Filter):
    """Hide passwords of URIs and DSNs in the message, traceback and stack of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: the handler reports it
            return True
        redacted = redact_uri(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_uri(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_uri(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, run_id, message, process, thread."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", None) or current_run_id(),
            "message": record.getMessage(),
            "process": record.processName,
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def configure_logging(
    *, log_format: LogFormat = "text", level: int = logging.WARNING, stream: TextIO | None = None
) -> logging.Handler:
    """Send log lines to ``stream`` (stderr) as text or JSON, replacing our previous handler."""
    global _configured_format
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RunIdFilter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    _configured_format = log_format
    return handler


@dataclass(frozen=True)
class WorkerLogging:
    """How a worker logs like its coordinator: the run id, format and level. Picklable."""

    run_id: str | None
    log_format: LogFormat = "text"
    level: int = logging.WARNING

    @classmethod
    def current(cls) -> WorkerLogging:
        """The coordinator's run id and logging set-up, as they are now."""
        return cls(
            current_run_id(),
            _configured_format or "text",
            logging.getLogger().getEffectiveLevel(),
        )

    def apply(self, *, in_child_process: bool) -> None:
        """Bind the run id in this thread; a child process also gets its own handler."""
        global _process_run_id
        if in_child_process:
            _process_run_id = self.run_id
            configure_logging(log_format=self.log_format, level=self.level)
        RUN_ID.set(self.run_id)
