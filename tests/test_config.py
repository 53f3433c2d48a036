from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ltxserve.config import Settings
from ltxserve.roots.worker import engine_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("LTXSERVE_"):
            monkeypatch.delenv(name)


def test_defaults_run_the_tiny_model_with_a_sane_encoder():
    settings = Settings()
    assert settings.model == "tiny"
    engine = engine_settings(settings)
    assert (engine.encode.crf, engine.encode.preset) == (18, "veryfast")
    assert settings.models_dir == settings.data_dir / "models"


def test_environment_variables_with_the_prefix_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("LTXSERVE_VIDEO_CRF", "23")
    monkeypatch.setenv("LTXSERVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LTXSERVE_VAE_SPATIAL_TILING", "true")
    settings = Settings()
    assert engine_settings(settings).encode.crf == 23
    assert engine_settings(settings).vae_spatial_tiling is True
    assert settings.models_dir == tmp_path / "models"


def test_a_config_file_is_read_and_the_environment_wins_over_it(monkeypatch, tmp_path):
    config = tmp_path / "ltxserve.toml"
    config.write_text('model = "/srv/ltx-2"\nvideo_preset = "medium"\nvideo_crf = 20\n')
    monkeypatch.setenv("LTXSERVE_CONFIG", str(config))
    monkeypatch.setenv("LTXSERVE_VIDEO_CRF", "16")
    settings = Settings()
    assert settings.model == "/srv/ltx-2"
    assert settings.video_preset == "medium"
    assert settings.video_crf == 16


def test_a_missing_config_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LTXSERVE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('video_crf = 99\n', "video_crf"),
        ('video_preset = "warp"\n', "video_preset"),
        ('colour = "red"\n', "colour"),
        ('storage_url = "s3:///no-bucket"\n', "storage_url"),
    ],
)
def test_bad_values_and_unknown_keys_in_the_file_are_refused(monkeypatch, tmp_path, content, field):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    monkeypatch.setenv("LTXSERVE_CONFIG", str(config))
    with pytest.raises(ValidationError, match=field):
        Settings()


@pytest.mark.parametrize("secret", ["changeme", "admin", "short-secret"])
def test_a_placeholder_or_short_admin_key_is_refused(monkeypatch, secret):
    monkeypatch.setenv("LTXSERVE_ADMIN_KEY", secret)
    with pytest.raises(ValidationError, match="admin_key"):
        Settings()


def test_a_real_admin_key_is_kept_secret(monkeypatch):
    monkeypatch.setenv("LTXSERVE_ADMIN_KEY", "9f3c1e0b7a5d4c2e8f6a")
    settings = Settings()
    assert settings.admin_key.get_secret_value() == "9f3c1e0b7a5d4c2e8f6a"
    assert "9f3c1e0b7a5d4c2e8f6a" not in repr(settings)


def test_the_database_defaults_to_a_file_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LTXSERVE_DATA_DIR", str(tmp_path))
    assert Settings().database == f"sqlite:///{tmp_path / 'ltxserve.db'}"
    monkeypatch.setenv("LTXSERVE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().database == "postgresql+psycopg://u@h/db"


def test_the_readme_settings_table_is_the_one_settings_makes():
    from ltxserve import settings_table

    readme = Path(__file__).parents[1] / "README.md"
    assert settings_table.main([str(readme), "--check"]) == 0, "run: python -m ltxserve.settings_table README.md"
    drifted = readme.read_text().replace("| `LTXSERVE_LEASE_S` | 30 |", "| `LTXSERVE_LEASE_S` | 20 |")
    assert settings_table.rewrite(drifted) == readme.read_text() != drifted
    for name in Settings.model_fields:
        assert f"| `LTXSERVE_{name.upper()}` |" in settings_table.table()
