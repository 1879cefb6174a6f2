"""Configuration: one traitlets class per concern, loaded from `HOME/workbench_config.py`.

The tenant catalog (tenants, their datasets and managers) and the compute profiles are
configuration, not database rows: an operator reviews them like policy. The embedded default
is the demo catalog of DESIGN.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, Type, Unicode, default
from traitlets.config import Config, Configurable, PyFileConfigLoader

from workbench.access.objects import S3ObjectStore
from workbench.access.secrets import OpenBaoStore
from workbench.embedded.openbao import EmbeddedOpenBao
from workbench.errors import ConfigError
from workbench.jobs.local import LocalJobBackend

CONFIG_FILE = "workbench_config.py"


def default_home() -> Path:
    """`$WORKBENCH_HOME`, else `~/.workbench`."""
    return Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".workbench").resolve()


@dataclass(frozen=True)
class Dataset:
    tenant: str
    name: str
    kind: str  # "objects" (S3 prefix) or "table" (SQL)
    description: str = ""

    @property
    def ref(self) -> str:
        return f"{self.tenant}/{self.name}"


@dataclass(frozen=True)
class Tenant:
    name: str
    datasets: dict[str, Dataset]
    managers: tuple[str, ...]
    approvals_required: int = 1
    display_name: str = ""


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", re.IGNORECASE)


def memory_bytes(text: str) -> int:
    """`16G` → bytes (1024-based, like JupyterHub's ByteSpecification); ValueError otherwise."""
    match = _BYTES.fullmatch(text)
    if not match:
        raise ValueError(f"not an amount of memory: {text!r} (use e.g. 512M or 16G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


@dataclass(frozen=True)
class Profile:
    name: str
    cpu: float
    memory: str
    gpu_kind: str | None = None
    gpu_count: int = 0
    image: str = ""
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cpu": self.cpu,
            "memory": self.memory,
            "gpu_kind": self.gpu_kind,
            "gpu_count": self.gpu_count,
            "image": self.image,
            "description": self.description,
        }


@dataclass(frozen=True)
class CatalogData:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)

    def governs(self, user: str, tenant: str) -> bool:
        t = self.tenants.get(tenant)
        return t is not None and user in t.managers

    def governed_by(self, user: str) -> list[str]:
        return sorted(n for n, t in self.tenants.items() if user in t.managers)


DEMO_TENANTS: dict[str, Any] = {
    name: {
        "display_name": display,
        "managers": ["maria"],
        "approvals_required": 1,
        "datasets": {
            "calls": {"kind": "objects", "description": "Call transcripts (JSON lines)"},
            "accounts": {"kind": "table", "description": "Customer accounts table"},
        },
    }
    for name, display in (("acme", "Acme Corp"), ("globex", "Globex Corporation"))
}

DEMO_PROFILES: dict[str, Any] = {
    "cpu-small": {"cpu": 1, "memory": "2G", "description": "1 CPU, 2 GB, no GPU"},
    "gpu-1": {
        "cpu": 4,
        "memory": "16G",
        "gpu_kind": "nvidia-h100",
        "gpu_count": 1,
        "description": "4 CPU, 16 GB, one NVIDIA H100",
    },
}

_TENANT_KEYS = {"display_name", "managers", "approvals_required", "datasets"}
_DATASET_KEYS = {"kind", "description"}
_PROFILE_KEYS = {"cpu", "memory", "gpu_kind", "gpu_count", "image", "description"}


def _check_keys(where: str, given: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


class Catalog(Configurable):
    """The tenants, their datasets and governing managers, and the compute profiles."""

    tenants = Dict(
        DEMO_TENANTS,
        help="""Tenants by name: {display_name, managers: [user], approvals_required: 1|2,
        datasets: {name: {kind: objects|table, description}}}.""",
    ).tag(config=True)

    profiles = Dict(
        DEMO_PROFILES,
        help="""Compute profiles by name: {cpu, memory, gpu_kind, gpu_count, image,
        description}.""",
    ).tag(config=True)

    default_image = Unicode(
        "", help="Image for profiles that name none (ignored by the local spawner)."
    ).tag(config=True)

    def build(self) -> CatalogData:
        """Validate the configured catalog into frozen dataclasses; raise ConfigError."""
        tenants: dict[str, Tenant] = {}
        for name, spec in self.tenants.items():
            _check_keys(f"tenant {name!r}", spec, _TENANT_KEYS)
            approvals = int(spec.get("approvals_required", 1))
            if approvals not in (1, 2):
                raise ConfigError(f"tenant {name!r}: approvals_required must be 1 or 2")
            managers = tuple(spec.get("managers", ()))
            if len(managers) < approvals:
                raise ConfigError(
                    f"tenant {name!r} needs {approvals} approvals but has {len(managers)} managers"
                )
            datasets = {}
            for dname, dspec in spec.get("datasets", {}).items():
                _check_keys(f"dataset {name}/{dname}", dspec, _DATASET_KEYS)
                kind = dspec.get("kind", "objects")
                if kind not in ("objects", "table"):
                    raise ConfigError(f"dataset {name}/{dname}: kind must be objects or table")
                datasets[dname] = Dataset(name, dname, kind, dspec.get("description", ""))
            tenants[name] = Tenant(
                name, datasets, managers, approvals, spec.get("display_name", name)
            )
        profiles: dict[str, Profile] = {}
        for name, spec in self.profiles.items():
            _check_keys(f"profile {name!r}", spec, _PROFILE_KEYS)
            profiles[name] = Profile(
                name=name,
                cpu=float(spec.get("cpu", 1)),
                memory=str(spec.get("memory", "1G")),
                gpu_kind=spec.get("gpu_kind"),
                gpu_count=int(spec.get("gpu_count", 0)),
                image=spec.get("image") or self.default_image,
                description=spec.get("description", ""),
            )
        return CatalogData(tenants, profiles)


class RequestPolicy(Configurable):
    """Bounds on what an access request may ask for."""

    min_hours = Float(0.01, help="Shortest request, in hours.").tag(config=True)
    max_hours = Float(168.0, help="Longest request, in hours (default one week).").tag(config=True)
    max_gpu_hours = Float(1000.0, help="Largest GPU-hour budget one request may ask for.").tag(
        config=True
    )
    max_datasets = Integer(50, help="Most datasets one request may name.").tag(config=True)
    max_purpose_chars = Integer(4000, help="Longest purpose text.").tag(config=True)


class AuditSettings(Configurable):
    """Where the audit chain is signed and how often it is checkpointed."""

    signing_key_file = Unicode(
        "",
        help="""Ed25519 private key (PEM) that signs checkpoints. Default: HOME/audit-signing.key,
        created on first use.""",
    ).tag(config=True)
    checkpoint_every = Integer(100, help="Sign a checkpoint after this many events.").tag(
        config=True
    )
    checkpoint_seconds = Float(
        10.0, help="...or after this many seconds with unsigned events."
    ).tag(config=True)
    max_batch = Integer(256, help="Most events one group commit writes.").tag(config=True)


class ServiceSettings(Configurable):
    """The workbench service: its database and HTTP limits."""

    db_url = Unicode(
        "",
        help="SQLAlchemy URL of the service database. Default: sqlite:///HOME/workbench.sqlite",
    ).tag(config=True)
    max_body_bytes = Integer(64 * 1024, help="Largest accepted request body.").tag(config=True)
    call_seconds = Float(
        6.0,
        help="""Longest wait for one call's database and store work before it is answered
        503 (a frozen database must not hang callers).""",
    ).tag(config=True)
    reaper_seconds = Float(
        15.0,
        help="""How often the reaper runs: it expires requests past their end, revokes their
        tokens and stops their servers, culls idle servers and enforces GPU-hour budgets.""",
    ).tag(config=True)
    idle_minutes = Float(60.0, help="Stop a CPU server idle this long.").tag(config=True)
    idle_gpu_minutes = Float(
        20.0, help="Stop a GPU server idle this long (GPUs are scarce: sooner)."
    ).tag(config=True)
    debug = Bool(False, help="Log at debug level.").tag(config=True)
    trusted_proxies = List(
        Unicode(), ["127.0.0.1"], help="Addresses whose X-Forwarded-For is believed."
    ).tag(config=True)


class DataSettings(Configurable):
    """How data credentials are handed out: which secret and object stores, and for how long."""

    secret_store_class = Type(
        "workbench.access.secrets.OpenBaoStore",
        klass="workbench.access.secrets.SecretStore",
        help="The secret store (OpenBao or Vault) that holds tenant credentials.",
    ).tag(config=True)
    object_store_class = Type(
        "workbench.access.objects.S3ObjectStore",
        klass="workbench.access.objects.ObjectStore",
        help="The object store (S3, SeaweedFS) that holds datasets and artifacts.",
    ).tag(config=True)
    grant_seconds = Integer(
        3600, help="Longest life of one grant (never past the request's end)."
    ).tag(config=True)
    sql_url = Unicode(
        help="""Where tenant SQL datasets live, as notebooks reach it, without credentials
        (postgresql://host:port/database). Empty: no SQL datasets.
        Default: $WORKBENCH_DATA_SQL_URL.""",
    ).tag(config=True)

    @default("sql_url")
    def _default_sql_url(self) -> str:
        return os.environ.get("WORKBENCH_DATA_SQL_URL", "")


class JobSettings(Configurable):
    """Where jobs run and how the service follows them."""

    backend_class = Type(
        "workbench.jobs.local.LocalJobBackend",
        klass="workbench.jobs.backend.JobBackend",
        help="""The job backend: local processes (embedded default) or Kubernetes Jobs
        (workbench.jobs.kube.KubeJobBackend).""",
    ).tag(config=True)
    api_url = Unicode(
        help="""The service's API as jobs reach it (…/services/workbench/api/v1/).
        Default: from $JUPYTERHUB_SERVICE_URL and $JUPYTERHUB_SERVICE_PREFIX.""",
    ).tag(config=True)
    poll_seconds = Float(
        2.0, help="How often running jobs' states are brought up to date with the backend."
    ).tag(config=True)

    @default("api_url")
    def _default_api_url(self) -> str:
        base = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101").rstrip("/")
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/workbench/")
        return f"{base}{prefix.rstrip('/')}/api/v1/"


class ArtifactSettings(Configurable):
    """The artifact registry's promotion gates: what an artifact is evaluated on, against which
    thresholds, and which tenants allow their data into shared models."""

    evaluation_notebook = Unicode(
        help="""The notebook that evaluates an artifact, run as a job per golden dataset and
        slice with the parameters `artifact_id`, `dataset` and `slice`; it reports each metric
        with `workbench.jobs.log_metric`. Default: examples/evaluate_calls.ipynb of a checkout.""",
    ).tag(config=True)

    @default("evaluation_notebook")
    def _default_evaluation_notebook(self) -> str:
        example = Path(__file__).resolve().parents[1] / "examples" / "evaluate_calls.ipynb"
        return str(example) if example.exists() else ""

    golden = Dict(
        {name: {"topic-classifier": ["calls"]} for name in DEMO_TENANTS},
        help="""Golden datasets per tenant and model type: {tenant: {model_type: [dataset]}}.
        Promotion to staging evaluates on each of them (the artifact's request must cover
        them).""",
    ).tag(config=True)
    slices = Dict(
        {"topic-classifier": ["sentiment=negative"]},
        help="""Slices each golden dataset is also evaluated on, per model type:
        {model_type: [slice]}; the evaluation notebook reads its `slice` parameter.""",
    ).tag(config=True)
    thresholds = Dict(
        {"topic-classifier": {"accuracy": {"min": 0.6}}},
        help="""Per model type, each gated metric's bound: {model_type: {metric: {"min": x}}}
        (higher is better) or {"max": y} (lower is better). Only these metrics gate.""",
    ).tag(config=True)
    tolerance = Float(
        0.02,
        help="""How much worse than the artifact now in production (same tenant and name) a
        gated metric may be on the same dataset and slice.""",
    ).tag(config=True)
    shared_consent = List(
        Unicode(),
        help="""Tenants that allow models built from their data to be promoted in the `shared`
        scope (base models every tenant may use).""",
    ).tag(config=True)


CONFIGURABLES: tuple[type[Configurable], ...] = (
    Catalog,
    RequestPolicy,
    AuditSettings,
    ServiceSettings,
    DataSettings,
    JobSettings,
    ArtifactSettings,
    LocalJobBackend,
    S3ObjectStore,
    OpenBaoStore,
    EmbeddedOpenBao,
)


def check_config(config: Config) -> None:
    """Raise ConfigError for an option no workbench class declares (a typo is not a warning)."""
    from workbench.jobs.kube import KubeJobBackend  # it builds on this module's Profile

    classes: tuple[type[Configurable], ...] = (*CONFIGURABLES, KubeJobBackend)
    known = {cls.__name__: cls for cls in classes}
    for section, values in config.items():
        cls = known.get(section)
        if cls is None:
            if section[:1].isupper() and section not in ("JupyterHub",):
                raise ConfigError(
                    f"unknown configuration section {section!r}; known: {sorted(known)}"
                )
            continue
        names = set(cls.class_trait_names(config=True))
        for key in values:
            if key not in names:
                raise ConfigError(f"unknown option {section}.{key}; {section} has {sorted(names)}")


def load_config(home: Path) -> Config:
    """Read HOME/workbench_config.py when it exists; check every option is known."""
    path = home / CONFIG_FILE
    config = Config()
    if path.exists():
        config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
    check_config(config)
    return config


@dataclass
class Settings:
    """Everything the domain needs, resolved for one HOME."""

    home: Path
    config: Config
    catalog: CatalogData
    policy: RequestPolicy
    audit: AuditSettings
    service: ServiceSettings
    data: DataSettings
    jobs: JobSettings

    @property
    def db_url(self) -> str:
        return self.service.db_url or f"sqlite:///{self.home / 'workbench.sqlite'}"

    @property
    def signing_key_path(self) -> Path:
        return Path(self.audit.signing_key_file or self.home / "audit-signing.key")


def settings_for(home: Path | None = None, config: Config | None = None) -> Settings:
    home = (home or default_home()).resolve()
    if config is None:
        config = load_config(home)
    else:
        check_config(config)
    return Settings(
        home=home,
        config=config,
        catalog=Catalog(config=config).build(),
        policy=RequestPolicy(config=config),
        audit=AuditSettings(config=config),
        service=ServiceSettings(config=config),
        data=DataSettings(config=config),
        jobs=JobSettings(config=config),
    )
