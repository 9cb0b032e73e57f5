import os
from pathlib import Path

from tests.conftest import run_python

ROOT = Path(__file__).resolve().parents[1]


def check(env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")}
    env.update({"SRMOS_DATA_DIR": str(tmp_path)}, **env_overrides)
    return run_python("manage.py", "check", env=env)


def test_it_starts_with_the_embedded_default(tmp_path):
    result = check({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def test_it_names_a_malformed_boolean(tmp_path):
    result = check({"DEBUG": "maybe"}, tmp_path)
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_it_names_a_malformed_database_url(tmp_path):
    result = check({"DATABASE_URL": "nonsense://x"}, tmp_path)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_it_requires_a_secret_key_without_debug(tmp_path):
    result = check({"DEBUG": "0"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_names_a_malformed_broker_url(tmp_path):
    result = check({"CELERY_BROKER_URL": "carrier-pigeon://coop"}, tmp_path)
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_it_names_a_malformed_integer(tmp_path):
    result = check({"CELERY_TASK_TIME_LIMIT": "ten"}, tmp_path)
    assert result.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT='ten' is not an integer" in result.stderr
