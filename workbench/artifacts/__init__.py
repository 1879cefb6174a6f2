"""Artifacts (models) that outlive notebooks: a registry with lineage and promotion gates.

In notebooks and jobs, this package is the client (`workbench.artifacts.save(...)`, `list()`,
`load(id)`), which imports no server module; the service's side lives in
`workbench.artifacts.service`, `.gates`, `.lineage`, `.store` and `.models`.
"""

from workbench.artifacts.client import ArtifactError, get, list, load, save

__all__ = ["ArtifactError", "get", "list", "load", "save"]
