"""The production compose file, checked as far as this machine can: `docker compose
config` (or Debian's `docker-compose config`, which `make test` installs when neither is
there) resolves it, and what it resolves to is a deployment the app accepts. There is no
Docker engine here, so images are never built or run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from services.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker", "beat")
SECRETS = ("POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
           "CONSENTGATE_TEMPLATE_KEY", "CONSENTGATE_METRICS_TOKEN")


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "no `docker compose` or `docker-compose` here (make test installs it)"
    return [legacy]


def _filled_env() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": "pg-Secret-0123456789",
        "MINIO_ROOT_USER": "consentgate",
        "MINIO_ROOT_PASSWORD": "minio-Secret-0123456789",
        "CONSENTGATE_TEMPLATE_KEY": Fernet.generate_key().decode(),
        "CONSENTGATE_PUBLIC_BASE_URL": "https://photos.example-school.org.uk",
        "CONSENTGATE_METRICS_TOKEN": "metrics-Secret-0123456789",
    }


def _config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    # Only PATH from this process: a secret set in the test runner's own environment
    # must not stand in for one missing from the env file.
    return subprocess.run(
        [*_compose_command(), "--project-directory", str(ROOT), "-f",
         str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config"],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = _config(tmp_path_factory.mktemp("compose"), _filled_env())
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def test_compose_resolves_the_whole_deployment(resolved: dict[str, Any]) -> None:
    assert set(resolved) == {"postgres", "redis", "minio", "minio-init", *APP_SERVICES}
    # Everything waits for what it needs: nothing screens or serves before the schema
    # and the versioned bucket exist.
    for name in ("api", "worker", "beat"):
        needs = resolved[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["minio-init"]["condition"] == "service_completed_successfully"
    init = " ".join(resolved["minio-init"]["command"])
    assert "mc version enable local/consentgate" in init
    assert "mc anonymous set none local/consentgate" in init


def test_the_api_is_healthy_only_when_ready(resolved: dict[str, Any]) -> None:
    check = " ".join(resolved["api"]["healthcheck"]["test"])
    assert "http://localhost:8000/readyz" in check


def test_every_app_process_gets_settings_that_pass_the_production_check(
        resolved: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = resolved[name]["environment"]
        settings = Settings(**{k.removeprefix("CONSENTGATE_").lower(): v
                               for k, v in env.items() if k.startswith("CONSENTGATE_")})
        assert settings.environment == "production"
        assert settings.storage_backend == "minio"
        assert "@postgres:5432/" in settings.resolved_database_url
        assert settings.resolved_broker_url.startswith("redis://redis:6379/")


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_resolve_without_each_secret(tmp_path: Path, secret: str) -> None:
    env = _filled_env()
    del env[secret]
    result = _config(tmp_path, env)
    assert result.returncode != 0
    assert f"set {secret}" in result.stderr


def test_every_command_compose_runs_is_one_the_cli_takes(resolved: dict[str, Any]) -> None:
    cli = Path(sys.executable).with_name("consentgate")
    for name in APP_SERVICES:
        command = resolved[name]["command"]
        assert command[0] == "consentgate", name
        # --help after the real options: click refuses an unknown option before it
        # prints the help, so this fails if compose passes one the CLI lacks.
        result = subprocess.run([str(cli), *command[1:], "--help"], capture_output=True,
                                text=True, check=False, timeout=120)
        assert result.returncode == 0, (name, result.stderr)
