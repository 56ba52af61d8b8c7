"""The credentials `images push` sends to a registry, found where the registries' own login tools
leave them: CHAOS_DRILL_REGISTRY_USERNAME/PASSWORD, else the Docker config (`auths`, or a
`credHelpers`/`credsStore` helper such as docker-credential-ecr-login or -gcloud)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import RegistryError

USERNAME_ENV = "CHAOS_DRILL_REGISTRY_USERNAME"
PASSWORD_ENV = "CHAOS_DRILL_REGISTRY_PASSWORD"
HELPER_TIMEOUT = 30


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: str
    """Where they came from, for messages (never the secret itself)."""

    def basic(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def docker_config_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json, as docker itself reads it."""
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def find(host: str, config_path: Path | None = None) -> Credentials | None:
    """The credentials for registry HOST (host[:port]), or None to push anonymously."""
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if username and password:
        return Credentials(username, password, f"{USERNAME_ENV}/{PASSWORD_ENV}")
    path = config_path or docker_config_path()
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RegistryError(f"cannot read {path} ({error}): fix it, or set {USERNAME_ENV} and "
                            f"{PASSWORD_ENV}") from None
    helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
    for key, entry in (config.get("auths") or {}).items():
        if _host_of(key) == host and entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, secret, f"{path} (auths)")
    if helper:
        return _from_helper(helper, host)
    return None


def _host_of(key: str) -> str:
    """The host[:port] of a Docker config `auths` key, which may be a URL."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _from_helper(helper: str, host: str) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run([program, "get"], input=host, capture_output=True, text=True,
                                timeout=HELPER_TIMEOUT)
    except FileNotFoundError:
        raise RegistryError(f"the Docker config names credential helper {program}, which is not "
                            f"installed: install it, or set {USERNAME_ENV} and {PASSWORD_ENV}") \
            from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"{program} gave no answer in {HELPER_TIMEOUT}s: log in again with "
                            "the registry's own tool") from None
    if result.returncode != 0:  # the helper knows no credentials for this host
        return None
    answer = json.loads(result.stdout)
    return Credentials(answer["Username"], answer["Secret"], program)
