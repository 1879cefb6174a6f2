"""The embedded default: `workbench up` runs JupyterHub, configurable-http-proxy and the workbench
service (later also OpenBao and SeaweedFS) as supervised local processes on one machine.

Modules: `up` (the command), `supervisor` (starts, watches and stops child processes),
`hubconfig` (the JupyterHub configuration, loaded by `hub_config/jupyterhub_config.py`),
`proxy` (finds or installs configurable-http-proxy), `auth` (the demo authenticator).
"""
