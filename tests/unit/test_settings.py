"""Settings: read once from the environment (or TOML), failing fast with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.errors import SettingsError
from hotline.settings import load_settings

pytestmark = pytest.mark.unit


def test_defaults_put_everything_under_the_data_dir(tmp_path: Path) -> None:
    """Without URLs the store and the embedded queue share one SQLite file in the data dir."""
    settings = load_settings({"HOTLINE_DATA_DIR": str(tmp_path)})
    assert f"sqlite:///{tmp_path / 'hotline.sqlite3'}" == settings.store_url
    assert settings.store_url == settings.bus_url
    assert tmp_path / "master.key" == settings.master_key_file


def test_flag_wins_over_environment(tmp_path: Path) -> None:
    """--data overrides HOTLINE_DATA_DIR."""
    settings = load_settings({"HOTLINE_DATA_DIR": "/elsewhere"}, data_dir=tmp_path)
    assert tmp_path == settings.data_dir


@pytest.mark.parametrize(("name", "value"), [
    ("HOTLINE_STORE_URL", "postgres://db/hotline"),
    ("HOTLINE_STORE_URL", "sqlite://relative-without-third-slash"),
    ("HOTLINE_BUS_URL", "kafka://broker"),
    ("HOTLINE_LOG_FORMAT", "xml"),
    ("HOTLINE_POW_DIFFICULTY", "many"),
    ("HOTLINE_POW_DIFFICULTY", "99"),
    ("HOTLINE_MAX_BODY_BYTES", "-1"),
    ("HOTLINE_SMTP_URL", "http://relay"),
    ("HOTLINE_PUBLIC_BASE_URL", "hotline.example"),
    ("HOTLINE_PORT", "70000"),
])
def test_bad_setting_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    """Each invalid value fails at start with a message naming the variable."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"HOTLINE_DATA_DIR": str(tmp_path), name: value})
    assert str(caught.value).startswith(name)


def test_toml_file_gives_defaults_and_environment_wins(tmp_path: Path) -> None:
    """HOTLINE_CONFIG names a TOML file; environment variables override it."""
    config = tmp_path / "hotline.toml"
    config.write_text('[hotline]\nbus_url = "amqp://guest:guest@127.0.0.1:5672/"\n'
                      'pow_difficulty = 12\nlog_format = "json"\n')
    settings = load_settings({"HOTLINE_CONFIG": str(config), "HOTLINE_DATA_DIR": str(tmp_path),
                              "HOTLINE_POW_DIFFICULTY": "3"})
    assert ("amqp://guest:guest@127.0.0.1:5672/", 3, "json") == (
        settings.bus_url, settings.pow_difficulty, settings.log_format)


def test_unreadable_toml_names_hotline_config(tmp_path: Path) -> None:
    """A broken config file is reported under HOTLINE_CONFIG."""
    config = tmp_path / "broken.toml"
    config.write_text("[hotline\n")
    with pytest.raises(SettingsError, match=r"^HOTLINE_CONFIG"):
        load_settings({"HOTLINE_CONFIG": str(config)})
