"""JupyterHub configuration of the embedded default (`workbench up` runs `jupyterhub -f` on it).

The settings live in workbench.embedded.hubconfig.configure; `workbench up` passes the ports
and commands it chose in WORKBENCH_* environment variables.
"""

from workbench.embedded.hubconfig import configure_from_env

configure_from_env(get_config())  # noqa: F821  (get_config is provided by traitlets)
