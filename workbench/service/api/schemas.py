"""Request bodies, validated with pydantic; their JSON schemas go into the OpenAPI document."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from workbench.service.base import FormBody


class _Body(FormBody):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class RequestIn(_Body):
    """A new access request."""

    tenant: str = Field(min_length=1, max_length=255, description="Tenant whose data is asked for")
    datasets: list[str] = Field(
        min_length=1, max_length=50, description="Dataset names of that tenant"
    )
    purpose: str = Field(min_length=1, max_length=4000, description="Why the data is needed")
    profile: str = Field(min_length=1, max_length=255, description="Compute profile name")
    hours: float = Field(gt=0, le=8760, description="How long the access should last")
    gpu_hours: float | None = Field(
        default=None, ge=0, le=1e6, description="GPU-hour budget (default: GPUs × hours)"
    )


class DecisionIn(_Body):
    """A decision's comment, shown to the requester and kept in the audit log."""

    comment: str = Field(default="", max_length=4000)
