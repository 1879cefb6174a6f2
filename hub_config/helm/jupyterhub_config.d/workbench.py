"""The workbench's part of the hub's configuration on Kubernetes, copied into the hub image
(images/hub/Dockerfile) at /usr/local/etc/jupyterhub/jupyterhub_config.d/, which the
zero-to-jupyterhub chart's jupyterhub_config.py loads after its own settings: the custom
scopes, and the workbench roles given to the OIDC groups in the `custom.workbench.roles`
values (hub_config/helm/values.yaml). Everything else is in `hub.config` values."""

from z2jh import get_config as chart_value  # the chart's hub image provides z2jh

from workbench import scopes

c = get_config()  # noqa: F821 (defined by traitlets' load_subconfig)

members = chart_value("custom.workbench.roles", {}) or {}
roles = scopes.hub_roles({name: spec.get("users", []) for name, spec in members.items()})
for role in roles:
    groups = (members.get(role["name"]) or {}).get("groups")
    if groups:
        role["groups"] = sorted(groups)
c.JupyterHub.custom_scopes = scopes.CUSTOM_SCOPES
c.JupyterHub.load_roles = roles
