"""Access requests: the one object everything else points at. Its approval is the grant."""

from workbench.requests.models import AccessRequest, Decision, State
from workbench.requests.service import NewRequest, Requests

__all__ = ["AccessRequest", "Decision", "NewRequest", "Requests", "State"]
