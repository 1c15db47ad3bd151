"""The settings of browser access: ``ALLOWED_ORIGINS`` and ``GRAPHIQL``."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings, parse_origins

DASHBOARD = "http://localhost:5173"


def test_allowed_origins_are_normalised_as_browsers_send_them(env: pytest.MonkeyPatch) -> None:
    origins = "http://localhost:5173, HTTPS://App.Example.com:443/ ,http://localhost:5173,"
    assert parse_origins(origins) == ("http://localhost:5173", "https://app.example.com")
    assert load_settings().allowed_origins == ()
    env.setenv("ALLOWED_ORIGINS", DASHBOARD)
    assert load_settings().allowed_origins == (DASHBOARD,)


@pytest.mark.parametrize("value", ["*", "localhost:5173", "http://localhost:5173/app", "ftp://x", "http://x:99999"])
def test_anything_but_an_exact_origin_is_a_clear_error(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ALLOWED_ORIGINS", value)
    with pytest.raises(SettingsError, match="ALLOWED_ORIGINS"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "enabled"), [(None, True), ("on", True), ("OFF", False), ("false", False), ("0", False)]
)
def test_graphiql_is_on_unless_turned_off(env: pytest.MonkeyPatch, value: str | None, enabled: bool) -> None:
    if value is not None:
        env.setenv("GRAPHIQL", value)
    assert load_settings().graphiql is enabled


def test_a_misspelt_graphiql_switch_is_a_clear_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("GRAPHIQL", "of")
    with pytest.raises(SettingsError, match="GRAPHIQL: must be 'on' or 'off'"):
        load_settings()
