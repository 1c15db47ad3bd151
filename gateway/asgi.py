"""``gateway.asgi:app`` for uvicorn (the Procfile and ``partner-billing serve``)."""

import sys

from gateway.app import create_app
from observability.logs import configure_logging
from observability.tracing import TracingUnavailable
from settings import SettingsError, load_settings

try:
    _settings = load_settings()
except SettingsError as exc:
    # One line for the operator (uvicorn would print a traceback), and a
    # non-zero exit so a process manager sees the failed start.
    sys.exit(f"gateway: configuration error: {exc}")
configure_logging(level=_settings.log_level, format=_settings.log_format)
try:
    app = create_app(_settings)
except TracingUnavailable as exc:
    sys.exit(f"gateway: configuration error: {exc}")
