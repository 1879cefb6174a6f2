"""The JupyterHub configuration of the embedded default, as one function.

`workbench up` chooses ports and commands, passes them to the hub process in `WORKBENCH_*`
environment variables (`HubSettings.to_env`), and starts `jupyterhub -f
hub_config/jupyterhub_config.py`; that file only calls `configure_from_env(c)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config import Config

from workbench.embedded.auth import DemoAuthenticator
from workbench.embedded.openbao import SERVICE_ENV as OPENBAO_ENV
from workbench.hub import scopes
from workbench.hub.rules import REASON_PREFIX
from workbench.hub.spawner import LocalRequestSpawner

TEMPLATES = Path(__file__).parent / "templates"

SERVICE_PREFIX = f"/services/{scopes.SERVICE_NAME}/"
HEALTH_PATH = f"{SERVICE_PREFIX}api/v1/health"

# role name → members; maria's tenants (acme, globex) come from the catalog, not from a role.
DEMO_ROLES: dict[str, list[str]] = {
    "researcher": ["alice", "bob"],
    "manager": ["maria"],
    "security": ["sam"],
    "workbench-admin": ["admin"],
}
DEMO_USERS: tuple[str, ...] = ("alice", "bob", "maria", "sam", "admin")
ADMIN_USERS: tuple[str, ...] = ("admin",)

# Every refusal of the approval gate has a reason starting with this (up.py keeps them off
# the console: they are people's 4xx, not the stack's faults).
SPAWN_REFUSED_REASON = REASON_PREFIX

# The thin config file, for installs that do not ship hub_config/ (see up.config_file).
CONFIG_FILE_TEXT = '''\
"""JupyterHub configuration of the embedded default (`workbench up` runs `jupyterhub -f` on it).

The settings live in workbench.embedded.hubconfig.configure; `workbench up` passes the ports
and commands it chose in WORKBENCH_* environment variables.
"""

from workbench.embedded.hubconfig import configure_from_env

configure_from_env(get_config())  # noqa: F821  (get_config is provided by traitlets)
'''


@dataclass(frozen=True)
class HubSettings:
    """What `workbench up` decided for one start; everything binds 127.0.0.1."""

    home: Path
    port: int  # public: the proxy
    hub_port: int
    proxy_api_port: int
    service_port: int
    password: str
    chp_command: tuple[str, ...]
    service_command: tuple[str, ...]

    @property
    def hub_dir(self) -> Path:
        return self.home / "hub"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def to_env(self) -> dict[str, str]:
        """The environment variables `from_env` reads back (the hub process's view)."""
        return {
            "WORKBENCH_HOME": str(self.home),
            "WORKBENCH_PORT": str(self.port),
            "WORKBENCH_HUB_PORT": str(self.hub_port),
            "WORKBENCH_PROXY_API_PORT": str(self.proxy_api_port),
            "WORKBENCH_SERVICE_PORT": str(self.service_port),
            "WORKBENCH_DEMO_PASSWORD": self.password,
            "WORKBENCH_CHP_COMMAND": json.dumps(list(self.chp_command)),
            "WORKBENCH_SERVICE_COMMAND": json.dumps(list(self.service_command)),
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HubSettings:
        """Read the variables `to_env` writes; a missing one is a KeyError naming it."""
        return cls(
            home=Path(env["WORKBENCH_HOME"]),
            port=int(env["WORKBENCH_PORT"]),
            hub_port=int(env["WORKBENCH_HUB_PORT"]),
            proxy_api_port=int(env["WORKBENCH_PROXY_API_PORT"]),
            service_port=int(env["WORKBENCH_SERVICE_PORT"]),
            password=env["WORKBENCH_DEMO_PASSWORD"],
            chp_command=tuple(json.loads(env["WORKBENCH_CHP_COMMAND"])),
            service_command=tuple(json.loads(env["WORKBENCH_SERVICE_COMMAND"])),
        )


def service_spec(s: HubSettings) -> dict[str, Any]:
    """The workbench service as a hub-managed service (`c.JupyterHub.services` entry)."""
    return {
        "name": scopes.SERVICE_NAME,
        "url": f"http://127.0.0.1:{s.service_port}",
        "command": list(s.service_command),
        # Managed services get only JupyterHub's env_keep variables plus these.
        "environment": {
            "WORKBENCH_HOME": str(s.home),
            "WORKBENCH_URL": s.public_url,
            "WORKBENCH_S3_ENDPOINT": os.environ.get("WORKBENCH_S3_ENDPOINT", ""),
            **{key: os.environ.get(key, "") for key in OPENBAO_ENV},
            "PYTHONUNBUFFERED": "1",
        },
        "cwd": str(s.hub_dir),
        "oauth_client_allowed_scopes": scopes.service_scopes(),
        "oauth_no_confirm": True,
        "display": True,
    }


def configure(c: Config, s: HubSettings) -> None:
    """Fill JupyterHub's config `c` for the embedded default described by `s`."""
    hub_dir = s.hub_dir
    c.JupyterHub.bind_url = s.public_url
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.hub_port}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = list(s.chp_command)
    c.ConfigurableHTTPProxy.pid_file = str(hub_dir / "jupyterhub-proxy.pid")

    # State that must survive a restart.
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")

    c.JupyterHub.authenticator_class = DemoAuthenticator
    c.DemoAuthenticator.user_password = s.password
    c.Authenticator.allowed_users = set(DEMO_USERS)
    c.Authenticator.admin_users = set(ADMIN_USERS)

    c.JupyterHub.custom_scopes = scopes.CUSTOM_SCOPES
    c.JupyterHub.load_roles = scopes.hub_roles(DEMO_ROLES)

    c.JupyterHub.services = [service_spec(s)]
    c.JupyterHub.default_url = SERVICE_PREFIX
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.template_vars = {"workbench_url": SERVICE_PREFIX}

    # A notebook server is a named server per approved access request (DESIGN), started by
    # the approval-gated local spawner: as root, as each user's own system account, which
    # must not read HOME (the hub's, the service's, OpenBao's and SeaweedFS's state).
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.spawner_class = LocalRequestSpawner
    c.LocalRequestSpawner.private_paths = [str(s.home)]
    c.LocalRequestSpawner.work_root = str(s.home / "servers")  # used only when not isolated
    # A JupyterLab server costs ~4 CPU-seconds to start: on a small machine a burst of spawns
    # must queue (429, "try again") rather than time out half-started (benchmarks/spawn.py).
    c.JupyterHub.concurrent_spawn_limit = max(4, 4 * (os.cpu_count() or 1))
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 120


def configure_from_env(c: Config, env: Mapping[str, str] | None = None) -> None:
    """`configure` with the settings `workbench up` put in the environment."""
    configure(c, HubSettings.from_env(os.environ if env is None else env))
