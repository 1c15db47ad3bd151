"""``gateway.asgi:app`` for uvicorn (the Procfile and ``partner-billing serve``)."""

import logging
import sys

from gateway.app import create_app
from settings import SettingsError, load_settings

try:
    _settings = load_settings()
except SettingsError as exc:
    # One line for the operator (uvicorn would print a traceback), and a
    # non-zero exit so a process manager sees the failed start.
    sys.exit(f"gateway: configuration error: {exc}")
logging.basicConfig(level=_settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(_settings)
