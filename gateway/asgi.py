"""``gateway.asgi:app`` for uvicorn (the Procfile and ``partner-billing serve``)."""

import logging

from gateway.app import create_app
from settings import load_settings

_settings = load_settings()
logging.basicConfig(level=_settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(_settings)
