"""Settings: one tree, declared once.

`RLMConfig` nests one model per concern (`llm`, `limits`, `budget`, `sandbox`,
`prompt`, `trajectory`, `context`, `input`, `observe`, `server`). Every field carries
its default, bounds and description; `rlm.toml` tables, `RLM_<SECTION>__<FIELD>`
variables, the `rlm run` flags and the MCP tool schemas are all derived from these
fields, so a new setting is one field. `load_config()` (in `rlmrt.config._sources`)
reads the sources.

Every field also has a *keyword*: a name unique across the tree that says what the
setting is on its own (`max_depth`, `trajectory_dir`, `sandbox`). Keywords are what
`RLM(...)`, `RLMConfig(...)`, `config_with(...)` accept next to whole sections, and
what the CLI flags are named after (`--max-depth`). A field's keyword is its name
unless it declares another with `keyword(...)` (e.g. `trajectory.dir` is
`trajectory_dir`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rlmrt._home import default_home
from rlmrt.errors import ConfigError
from rlmrt.sandbox.base import Limits

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

CONFIG_FILE_NAME = "rlm.toml"
DEFAULT_MAX_REPLY_CHARS = 1_000_000
ENV_PREFIX = "RLM_"
ENV_NESTED_DELIMITER = "__"


def keyword(name: str) -> dict[str, Any]:
    """`json_schema_extra` that gives a field its keyword (see the module docs)."""
    return {"keyword": name}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelPrice(BaseModel):
    """A custom price in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0, description="USD per million input tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million output tokens.")
    cache_read_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens read from the prompt cache (default: input).",
    )
    cache_write_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens written to the prompt cache (default: input).",
    )


MediaInput = Literal["auto", "none", "images", "audio", "all"]


class LLMSettings(_Section):
    """The models and how to reach them."""

    model: str | None = Field(
        default=None, description="Root model as provider/name, e.g. openai/gpt-4o-mini."
    )
    sub_model: str | None = Field(
        default=None, description="Model for llm_query sub-calls (default: the root model)."
    )
    api_base: str | None = Field(
        default=None, description="URL of an OpenAI-compatible server (vLLM, Ollama, a proxy)."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="API key. Prefer RLM_LLM__API_KEY or the provider's variable: flags end"
        " up in shell history.",
    )
    sub_system_prompt: str | None = Field(
        default=None, description="System prompt of llm_query sub-calls."
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature (default: the model's)."
    )
    seed: int | None = Field(default=None, description="Sampling seed, for models that use one.")
    request_timeout_s: float = Field(
        default=120.0, gt=0, le=86_400, description="Seconds one model request may take."
    )
    max_retries: int = Field(
        default=3, ge=0, le=20, description="Retries of a failed model request."
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Prices of models LiteLLM does not know, in USD per million tokens.",
    )
    max_reply_chars: int = Field(
        default=DEFAULT_MAX_REPLY_CHARS,
        ge=1_000,
        le=1_000_000_000,
        description="Characters of one model reply that are read; a longer reply is cut"
        " there (a warning event says so).",
    )
    media_input: MediaInput = Field(
        default="auto",
        description="What models take besides text (llm_query's images= and audio=):"
        ' "auto" asks LiteLLM\'s model info (a model it does not know is sent them);'
        ' "none", "images", "audio" or "all" declare it for every model (a local one).',
    )


class BudgetLimits(_Section):
    """Limits of a whole run tree (None: unlimited). A child run draws on what its
    parent's tree has left."""

    max_depth: int = Field(default=1, ge=0, le=16, description="Deepest rlm_query recursion.")
    max_iterations: int = Field(default=20, ge=1, le=1000, description="Model/code rounds per run.")
    max_model_calls: int | None = Field(
        default=None, ge=1, description="Model calls of the whole tree."
    )
    max_input_tokens: int | None = Field(
        default=None, ge=1, description="Input tokens of the whole tree."
    )
    max_output_tokens: int | None = Field(
        default=None, ge=1, description="Output tokens of the whole tree."
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Cost of the whole tree in USD."
    )
    max_wall_time_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall seconds of the whole run (one code execution: limits.exec_timeout_s).",
    )
    daily_usd: float | None = Field(
        default=None,
        gt=0,
        description="USD the project's recorded runs may spend per UTC day, checked before a"
        " run starts and during it (needs trajectories: the day's spending is read from"
        " them).",
    )
    monthly_usd: float | None = Field(
        default=None,
        gt=0,
        description="USD the project's recorded runs may spend per UTC calendar month, checked"
        " like daily_usd.",
    )
    max_concurrency: int = Field(
        default=64, ge=1, le=4096, description="Model calls running at once in one run tree."
    )
    max_tool_calls: int | None = Field(
        default=1000,
        ge=1,
        description="Tool calls (tools.NAME(...), each item of tools.batch) of the whole tree.",
    )
    max_concurrent_runs: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Child runs (and their sandboxes) running at once in one run tree; more"
        " wait their turn.",
    )


class ToolGrants(BaseModel):
    """Needs granted to every tool (`[tools.grants]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: bool = Field(default=False, description="Tools may use the network.")
    paths: list[str] = Field(
        default_factory=list, description="Paths (and what is under them) tools may use."
    )
    secrets: list[str] = Field(
        default_factory=list,
        description="Environment variables tools may read; they reach the tool on the host"
        " only, never the sandbox or the trajectory.",
    )


class ToolGrant(ToolGrants):
    """One tool granted in `[tools]`: its version pin and the needs granted to it alone
    (on top of `[tools.grants]`). `sqlite = ">=1.2,<2"` is `[tools.sqlite] version = ...`."""

    version: str = Field(
        default="", description='Versions of the tool accepted, e.g. ">=1.2,<2" ("": any).'
    )


class MCPServerSettings(BaseModel):
    """An MCP server whose tools code may call (`[tools.mcp.NAME]`): a stdio `command`
    (with `args` and `env`) or a streamable-HTTP `url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = Field(default=None, description="Program that serves MCP on stdio.")
    args: list[str] = Field(default_factory=list, description="Arguments of `command`.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables of `command`."
    )
    cwd: str | None = Field(default=None, description="Working folder of `command`.")
    url: str | None = Field(default=None, description="URL of a streamable-HTTP MCP server.")

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of command (stdio) or url (HTTP)")
        return self


class ToolSettings(_Section):
    """Tools code may call as `tools.NAME(...)`: which are granted (each other key of
    `[tools]` is a tool's name and its version pin or `ToolGrant` table), what they may
    use, and the MCP servers that provide more."""

    call_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="Wall seconds one tool call may take.",
        json_schema_extra=keyword("tool_timeout_s"),
    )
    output_bytes: int = Field(
        default=100_000,
        gt=0,
        le=1_000_000_000,
        description="Bytes (as JSON) of one tool call's result; a longer text is cut with a"
        " marker, a larger value is refused.",
        json_schema_extra=keyword("tool_output_bytes"),
    )
    granted: dict[str, ToolGrant] = Field(
        default_factory=dict,
        description="Tools offered to code by name, with their version pins.",
        json_schema_extra=keyword("granted_tools"),
    )
    grants: ToolGrants = Field(
        default_factory=ToolGrants,
        description="Needs granted to every tool.",
        json_schema_extra=keyword("tool_grants"),
    )
    mcp: dict[str, MCPServerSettings] = Field(
        default_factory=dict,
        description="MCP servers whose tools are offered as tools.SERVER__TOOL.",
        json_schema_extra=keyword("mcp_servers"),
    )

    @model_validator(mode="before")
    @classmethod
    def _granted_by_name(cls, data: Any) -> Any:
        """`[tools]` keys that are not fields are granted tools: `name = "pin"` or a table."""
        if not isinstance(data, Mapping):
            return data
        known = {field_keyword(n, f) for n, f in cls.model_fields.items()} | set(cls.model_fields)
        out = {k: v for k, v in data.items() if k in known}
        granted = dict(out.pop("granted", None) or out.pop("granted_tools", None) or {})
        granted.update({name: value for name, value in data.items() if name not in known})
        if granted:
            out["granted"] = {
                name: {"version": value} if isinstance(value, str) else value
                for name, value in granted.items()
            }
        return out


class SandboxSettings(_Section):
    """Where code runs. The per-execution limits are the `limits` section."""

    kind: str = Field(
        default="process",
        description="Sandbox backend: process (the default: a killable process, isolated by"
        " bubblewrap where installed), docker, wasm, remote (on a sandbox host: see url),"
        " kubernetes (a pod per sandbox: see kube_config), or local (in-process, for trusted"
        " code: its time and memory limits are best-effort).",
        json_schema_extra=keyword("sandbox"),
    )
    pool: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Started sandboxes kept ready for slow-starting kinds (docker, wasm,"
        " process, kubernetes: ready pods); 0: off.",
        json_schema_extra=keyword("sandbox_pool"),
    )
    url: str | None = Field(
        default=None,
        pattern=r"^wss?://",
        description="The remote kind's sandbox host (`rlm sandbox serve`): ws://HOST:PORT,"
        " or wss:// when it serves TLS.",
        json_schema_extra=keyword("sandbox_url"),
    )
    token_env: str = Field(
        default="RLM_SANDBOX_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the sandbox host's token (the token"
        " is never a setting, so never written to a file or a log).",
        json_schema_extra=keyword("sandbox_token_env"),
    )
    ca_file: Path | None = Field(
        default=None,
        description="The certificate (PEM) a wss:// sandbox host is trusted by, instead of"
        " the system's (a self-signed one).",
        json_schema_extra=keyword("sandbox_ca_file"),
    )

    kube_config: Path | None = Field(
        default=None,
        description="The kubernetes kind's kubeconfig file (default: the first of"
        " $KUBECONFIG, else ~/.kube/config).",
    )
    kube_context: str | None = Field(
        default=None,
        max_length=253,
        description="The kubeconfig context the kubernetes kind uses (default: its current"
        " context).",
    )
    kube_namespace: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="The namespace the kubernetes kind makes its sandbox pods in.",
    )
    kube_image: str | None = Field(
        default=None,
        max_length=512,
        description="The image of the kubernetes kind's pods (default: the docker sandbox's"
        " image, rlmrt-sandbox:bookworm, never pulled: it must be on the node).",
    )

    @field_validator("kind")
    @classmethod
    def _known_sandbox(cls, value: str) -> str:
        from rlmrt.sandbox.facade import SANDBOXES

        try:
            return SANDBOXES.check(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    def backend_options(self) -> dict[str, Any]:
        """What the configured kind takes beyond the limits (`create_backend`'s options):
        for "remote", the host's url, the token read from `token_env` now, and `ca_file`;
        for "kubernetes", its cluster, namespace and image."""
        if self.kind == "kubernetes":
            return {
                "kubeconfig": self.kube_config,
                "context": self.kube_context,
                "namespace": self.kube_namespace,
                "image": self.kube_image,
            }
        if self.kind != "remote":
            return {}
        if self.url is None:
            raise ConfigError(
                "the remote sandbox needs sandbox.url (--sandbox-url), the address of a"
                " sandbox host (`rlm sandbox serve`)"
            )
        token = os.environ.get(self.token_env)
        if not token:
            raise ConfigError(
                f"the remote sandbox needs its host's token in ${self.token_env}"
                " (sandbox.token_env names the variable)"
            )
        return {"url": self.url, "token": token, "ca_file": self.ca_file}


class PromptSettings(_Section):
    """What the model is shown: prompt rules, output cuts, compaction."""

    profile: str = Field(
        default="auto",
        description='Extra prompt rules for a family of models: "auto" (by the model\'s'
        ' name), "small" (models of <= 4B parameters) or "default".',
        json_schema_extra=keyword("prompt_profile"),
    )
    max_output_chars: int = Field(
        default=20_000,
        ge=200,
        le=10_000_000,
        description="Characters of one execution's output shown to the model.",
    )
    context_window_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The root model's window, for compaction (default: LiteLLM's number"
        " when it knows the model, else no compaction).",
    )
    compact_at: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Compact the root conversation when it fills this share of the window.",
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from rlmrt.prompt_profiles import profile_for

        try:
            profile_for(None, value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value


class TrajectorySettings(_Section):
    """The JSON-lines record of each run, read by `rlm logs` and `rlm replay`."""

    dir: Path = Field(
        default_factory=lambda: default_home() / "runs",
        description="Folder for trajectory files (default: RLMRT_HOME/runs).",
        json_schema_extra=keyword("trajectory_dir"),
    )
    save: bool = Field(
        default=True,
        description="Write a trajectory file for each run.",
        json_schema_extra=keyword("save_trajectory"),
    )

    @field_validator("dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class ContextSettings(_Section):
    """`context_search()` in the REPL."""

    provider: str | None = Field(
        default=None,
        description='Context provider: "local" indexes context_root, "snipara" uses the'
        " SNIPARA_* variables; none: off.",
        json_schema_extra=keyword("context_provider"),
    )
    root: Path | None = Field(
        default=None,
        description="Folder the local provider indexes (default: the working folder, or"
        " the project's root).",
        json_schema_extra=keyword("context_root"),
    )
    index: Path | None = Field(
        default=None,
        description="The local provider's index file (default: a file under RLMRT_HOME/index).",
        json_schema_extra=keyword("context_index"),
    )

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        from rlmrt.context.base import PROVIDERS

        if value is None or value.strip().lower() in ("", "none"):
            return None
        try:
            return PROVIDERS.check(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("root", "index")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()


class MemorySettings(_Section):
    """What runs remember and recall, and the notes learned from feedback on runs; one
    store per project (or one for this machine outside projects)."""

    path: Path = Field(
        default_factory=lambda: default_home() / "memory.sqlite",
        description="The memory store (default: RLMRT_HOME/memory.sqlite; a project's own).",
        json_schema_extra=keyword("memory_path"),
    )
    pinned_max_tokens: int = Field(
        default=400,
        ge=0,
        le=20_000,
        description="Pinned memories added to a run's first prompt, up to this many tokens "
        "(0: none).",
    )
    learning: bool = Field(
        default=True,
        description="Add the learned notes most like the question and the context's first "
        "line to a run's first prompt.",
    )
    learned_max_notes: int = Field(
        default=3, ge=0, le=20, description="Learned notes added to a first prompt, at most."
    )
    repl: bool = Field(
        default=True,
        description="Run code may use memory.remember/recall/forget (listed in the root "
        "model's instructions, except by the small-model profile); off: those calls fail.",
        json_schema_extra=keyword("memory_in_repl"),
    )
    embedding_model: str | None = Field(
        default=None,
        description="Rank recall and a first prompt's lessons by embeddings from this model "
        "(provider/name, e.g. openai/nomic-embed-text), full-text search as the fallback; "
        "unset: full-text search only.",
    )
    embedding_api_base: str | None = Field(
        default=None,
        description="URL of the OpenAI-compatible server the embedding model is served by.",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the embedding server. Prefer RLM_MEMORY__EMBEDDING_API_KEY: "
        "flags end up in shell history.",
    )

    @field_validator("path")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class InputSettings(_Section):
    """How paths given as a context (`-c`, `Path`s) are read.

    A folder is a tree someone else may have written: by default its symlinks that point
    outside it are not followed, special files (FIFOs, devices, sockets) are skipped, and
    every file and the whole folder have a size cap, so a link to `/dev/zero` or a huge
    dump cannot exhaust memory. What is skipped is listed in the context's metadata
    (`skipped`), which the root model and the trajectory see.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    follow_symlinks: bool = Field(
        default=False, description="Follow a folder's symlinks that point outside it."
    )
    max_file_bytes: int = Field(
        default=256 << 20, ge=1, description="Bytes of one context file, at most."
    )
    max_total_bytes: int = Field(
        default=1 << 30, ge=1, description="Bytes of all the context's files together, at most."
    )
    errors: Literal["raise", "skip"] = Field(
        default="raise",
        description='Files of a folder that cannot be read: "raise" ends the load with one'
        ' error listing them all, "skip" loads the rest and lists them as skipped.',
        json_schema_extra=keyword("input_errors"),
    )
    encoding: str = Field(
        default="utf-8",
        description="Encoding of context files (a folder's files that do not decode stay bytes).",
    )
    parse_text: bool = Field(
        default=False,
        description="Parse text formats too: CSV/TSV into a list of rows, JSON into its"
        " value, JSONL into a list, HTML into its text (off: they stay text, as they are)."
        " PDF, DOCX, XLSX, images and audio are always read by format.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


AlertKind = Literal["budget", "error_rate", "model_latency_p95", "limit_hits"]


class AlertRule(BaseModel):
    """One alert rule, evaluated on the event stream of the process's runs.

    `budget`: spending reached `threshold` (a share, 0-1) of `[budget] daily_usd` (the
    project's day) or of `max_cost_usd` (one run tree). `error_rate`: failed model calls
    over all model calls in the last `window_s` reached `threshold` (0-1).
    `model_latency_p95`: the 95th percentile of model call seconds in the window reached
    `threshold`. `limit_hits`: executions stopped by a sandbox limit in the window
    reached `threshold`. Window rules wait for `min_events` events. An alert fires once,
    then again only after `repeat_s`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AlertKind = Field(description="What the rule watches.")
    threshold: float = Field(gt=0, description="The value that fires the alert.")
    window_s: float = Field(default=300, gt=0, le=86_400, description="Window of rates.")
    min_events: int = Field(default=1, ge=1, description="Events a window needs first.")
    repeat_s: float = Field(default=3600, ge=0, description="Quiet time after an alert.")
    severity: str = Field(default="warning", description="The alert's severity label.")
    name: str | None = Field(default=None, description="Alert name (default: from the kind).")

    @model_validator(mode="after")
    def _share(self) -> AlertRule:
        if self.kind in ("budget", "error_rate") and self.threshold > 1:
            raise ValueError(f"a {self.kind} threshold is a share between 0 and 1")
        return self


class ObserveSettings(_Section):
    """Telemetry of runs: OpenTelemetry traces (the `otel` extra) and Prometheus metrics
    (the `metrics` extra). The standard `OTEL_*` variables (headers, timeout, sampler,
    ...) apply as well; these settings win."""

    trace: bool | None = Field(
        default=None,
        description="Send OpenTelemetry spans of each run. Default: only when the process"
        " already has a tracer provider (then the spans join its current trace).",
    )
    trace_content: bool = Field(
        default=False,
        description="Put prompts, replies and code on the spans (also"
        " OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true).",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP endpoint of rlmrt's own tracer provider (default:"
        " OTEL_EXPORTER_OTLP_ENDPOINT, else localhost).",
    )
    otlp_protocol: str | None = Field(
        default=None,
        description='OTLP protocol: "http/protobuf" or "grpc" (default:'
        " OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf).",
    )
    service_name: str | None = Field(
        default=None, description="service.name of the spans (default: OTEL_SERVICE_NAME, rlmrt)."
    )
    metrics: bool | None = Field(
        default=None,
        description="Count runs in Prometheus metrics (rlm_*). Default: when prometheus-client"
        " is installed (the metrics extra).",
    )
    project: str | None = Field(
        default=None,
        description="The project label of metrics (set by the active project).",
        json_schema_extra=keyword("project_name"),
    )

    alerts: list[AlertRule] = Field(
        default_factory=list,
        description="Alert rules evaluated on the runs' events ([[observe.alerts]] tables).",
    )
    alert_webhook: str | None = Field(
        default=None,
        description="URL that alerts are POSTed to as JSON (retried with backoff).",
    )
    alertmanager_url: str | None = Field(
        default=None,
        description="Alertmanager that alerts are sent to (its /api/v2/alerts), e.g."
        " http://127.0.0.1:9093.",
    )

    @field_validator("otlp_protocol")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        if value is not None and value not in OTLP_PROTOCOLS:
            raise ValueError(f"unknown OTLP protocol {value!r}: use {' or '.join(OTLP_PROTOCOLS)}")
        return value


OTLP_PROTOCOLS = ("http/protobuf", "grpc")


DEFAULT_PROFILE = "rlm"
_URL_PASSWORD = re.compile(r"^([^:/]+://[^:/@]*:)[^/?#]*@")  # scheme://user:PASSWORD@


def masked_url(url: str) -> str:
    """`url` with its password (scheme://user:PASSWORD@host) shown as ***."""
    return _URL_PASSWORD.sub(r"\1***@", url)


class ServerSettings(_Section):
    """`rlm serve`: the OpenAI-compatible HTTP API (the `server` extra).

    A profile is a name a client gives as `model`, with the settings its runs use on top
    of the rest of this tree (keywords or sections, as in `RLM(...)`); the profile
    "rlm" is this tree as it is, unless a profile of that name changes it."""

    host: str = Field(
        default="127.0.0.1",
        description="Address the server listens on (0.0.0.0: every interface).",
        json_schema_extra=keyword("server_host"),
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Port the server listens on.",
        json_schema_extra=keyword("server_port"),
    )
    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{default_home() / 'server.db'}",
        description="SQLAlchemy async URL of the tenants, keys and runs (default: SQLite"
        " at RLMRT_HOME/server.db).",
    )
    key_requests_per_minute: int = Field(
        default=60,
        ge=0,
        description="Requests per minute of each API key (0: no limit).",
    )
    key_tokens_per_minute: int = Field(
        default=2_000_000,
        ge=0,
        description="Model tokens per minute of each API key, counted when a run ends"
        " (0: no limit).",
    )
    key_max_concurrent: int = Field(
        default=4,
        ge=0,
        description="Runs of one API key at the same time (0: no limit).",
    )
    tenant_requests_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests per minute of all of a tenant's keys together (0: no limit;"
        " `rlm tenants set T --rpm N` overrides it for T).",
    )
    tenant_tokens_per_minute: int = Field(
        default=10_000_000,
        ge=0,
        description="Model tokens per minute of all of a tenant's keys together (0: no"
        " limit; `rlm tenants set T --tpm N` overrides it for T).",
    )
    tenant_max_concurrent: int = Field(
        default=16,
        ge=0,
        description="Runs of all of a tenant's keys at the same time (0: no limit;"
        " `rlm tenants set T --max-concurrent N` overrides it for T).",
    )
    key_daily_usd: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        description="USD each API key's runs may spend per UTC day, at the configured"
        " prices ([llm] prices or LiteLLM's); a run that reaches it ends partial (0: no"
        " budget; `rlm keys create --daily-usd` overrides it for a key).",
    )
    tenant_daily_usd: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        description="USD all of a tenant's keys together may spend per UTC day (0: no"
        " budget; `rlm tenants set T --daily-usd X` overrides it for T).",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where the rate-limit counters live, as a `limits` storage URI:"
        " memory:// (this process) or e.g. redis://HOST:6379 (shared by replicas).",
    )
    files_dir: Path = Field(
        default_factory=lambda: default_home() / "files",
        description="Folder of the files clients upload to /v1/files (default: RLMRT_HOME/files).",
    )
    max_upload_bytes: int = Field(
        default=1 << 30,
        ge=1,
        le=1 << 40,
        description="Largest file /v1/files takes, in bytes (a larger upload is refused"
        " with 413 and nothing of it kept).",
    )
    max_request_bytes: int = Field(
        default=64 << 20,
        ge=1024,
        le=1 << 34,
        description="Largest request body of the JSON endpoints, in bytes (413 over it).",
    )
    heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often each server records that it is alive, takes the cancels"
        " of its runs asked of other replicas, and looks for runs of dead servers.",
    )
    instance_stale_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="A server not heard of for this long is dead: its running runs are"
        " marked failed (keep it well above heartbeat_s).",
    )
    event_keepalive_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between the keep-alive comments of /v1/runs/{id}/events.",
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        description="URL of the JSON Web Key Set whose keys sign the OIDC/JWT bearer tokens"
        " this server accepts (unset: API keys only); https, or http on this machine only."
        " Needs jwt_issuer and jwt_audience.",
    )
    jwt_issuer: str | None = Field(
        default=None, description="The `iss` claim a bearer token must carry."
    )
    jwt_audience: str | None = Field(
        default=None, description="The `aud` claim a bearer token must carry (this server)."
    )
    jwt_tenant_claim: str = Field(
        default="tenant",
        min_length=1,
        description="The token's claim that names its tenant (as `rlm tenants create` named"
        " it; the tenant must exist).",
    )
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        min_length=1,
        description="Signature algorithms a bearer token may use: public-key ones only (RS*,"
        " PS*, ES*, EdDSA); never `none` or HS*.",
    )
    jwt_leeway_s: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Seconds of clock difference allowed on a token's exp, nbf and iat.",
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Profiles clients choose as `model`: name -> settings"
        " ([server.profiles.NAME] tables).",
        json_schema_extra=keyword("server_profiles"),
    )

    @model_validator(mode="after")
    def _stale_after_heartbeats(self) -> ServerSettings:
        # a server is dead after missing two heartbeats at least, never between two
        if self.instance_stale_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"instance_stale_s ({self.instance_stale_s:g}) must be at least twice"
                f" heartbeat_s ({self.heartbeat_s:g}): a live server would be taken for dead"
            )
        return self

    @field_validator("profiles")
    @classmethod
    def _valid_profiles(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, settings in value.items():
            if not name.strip() or name != name.strip():
                raise ValueError(f"profile name {name!r}: must be a non-empty name")
            nested = nest_keywords(settings)
            if "server" in nested:
                raise ValueError(f"profile {name!r}: a profile cannot change [server]")
            try:
                RLMConfig.model_validate(nested)
            except ValidationError as exc:
                raise ValueError(
                    f"profile {name!r}: " + describe_errors(exc, lambda _path: "profile")
                ) from exc
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _public_key_algorithms(cls, value: list[str]) -> list[str]:
        refused = [name for name in value if name not in JWT_ALGORITHMS]
        if refused:
            raise ValueError(
                f"{', '.join(map(repr, refused))}: a bearer token's algorithm must be a"
                f" public-key one ({', '.join(JWT_ALGORITHMS)})"
            )
        return value

    @model_validator(mode="after")
    def _whole_jwt_settings(self) -> ServerSettings:
        url = self.jwt_jwks_url
        if url is None:
            return self
        if not self.jwt_issuer or not self.jwt_audience:
            raise ValueError(
                "jwt_jwks_url needs jwt_issuer and jwt_audience (a token of any issuer or"
                " audience would be accepted)"
            )
        parsed = urlsplit(url)
        local = parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "::1", "localhost")
        if parsed.scheme != "https" and not local:
            raise ValueError(
                f"jwt_jwks_url {masked_url(url)}: use https (http only on this machine)"
            )
        return self


# what a bearer token may be signed with: never "none", never HS* (a public key as secret)
JWT_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
)  # fmt: skip


class RLMConfig(BaseModel):
    """Everything that shapes a run, as one tree of sections.

    Takes sections (`budget=BudgetLimits(...)` or `budget={...}`) and single settings by
    their keyword (`max_depth=2`, `sandbox="docker"`); see `keywords()`.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    llm: LLMSettings = Field(default_factory=LLMSettings, description="Models.")
    limits: Limits = Field(default_factory=Limits, description="Limits of each code execution.")
    budget: BudgetLimits = Field(default_factory=BudgetLimits, description="Run-tree budgets.")
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings, description="Sandbox.")
    prompt: PromptSettings = Field(default_factory=PromptSettings, description="Prompts.")
    trajectory: TrajectorySettings = Field(
        default_factory=TrajectorySettings, description="Run records."
    )
    context: ContextSettings = Field(default_factory=ContextSettings, description="Search.")
    input: InputSettings = Field(
        default_factory=InputSettings, description="Reading context files."
    )
    observe: ObserveSettings = Field(default_factory=ObserveSettings, description="Telemetry.")
    memory: MemorySettings = Field(
        default_factory=MemorySettings, description="Memory and learned notes."
    )
    server: ServerSettings = Field(
        default_factory=ServerSettings, description="The HTTP API server."
    )
    tools: ToolSettings = Field(default_factory=ToolSettings, description="Tools code may call.")

    @model_validator(mode="before")
    @classmethod
    def _sections_from_keywords(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return nest_keywords(data)
        return data

    def api_key_value(self) -> str | None:
        return self.llm.api_key.get_secret_value() if self.llm.api_key else None

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data, with the API key and the database password masked."""
        data = self.model_dump(mode="json")
        if self.llm.api_key is not None:
            data["llm"]["api_key"] = "***"
        if self.memory.embedding_api_key is not None:
            data["memory"]["embedding_api_key"] = "***"
        for url in ("database_url", "rate_limit_storage"):
            data["server"][url] = masked_url(data["server"][url])
        return data


SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in RLMConfig.model_fields.items()
}

# Settings whose flat name of before the tree is not their keyword now.
RENAMED = {"timeout_s": "exec_timeout_s"}


def field_keyword(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("keyword"), str):
        return str(extra["keyword"])
    return name


@cache
def keywords() -> dict[str, tuple[str, str]]:
    """Each setting's keyword -> (section, field), over the whole tree."""
    found: dict[str, tuple[str, str]] = {}
    for section, model in SECTIONS.items():
        for name, field in model.model_fields.items():
            found[field_keyword(name, field)] = (section, name)
    return found


def setting_field(section: str, name: str) -> FieldInfo:
    return SECTIONS[section].model_fields[name]


BOUND_NAMES = ("ge", "gt", "le", "lt")


def setting_bounds(field: FieldInfo) -> dict[str, Any]:
    """The bounds of a setting as `Field` keywords, e.g. {"ge": 0, "le": 16}."""
    return {
        name: getattr(item, name)
        for item in field.metadata
        for name in BOUND_NAMES
        if getattr(item, name, None) is not None
    }


def optional_setting(key: str) -> Any:
    """`Annotated[T | None, Field(...)]` for the setting `key` (a keyword): its type,
    bounds and description, None meaning "as configured". For schemas of fronts (MCP
    tools, HTTP requests) that let a caller set it."""
    from typing import Annotated

    field = setting_field(*keywords()[key])
    described = Field(description=field.description, **setting_bounds(field))
    return Annotated[field.annotation | None, described]  # type: ignore[operator]


def moved_hint(flat_name: str) -> str | None:
    """Where a flat setting of before the tree lives now, e.g. "[budget] max_depth"."""
    place = keywords().get(RENAMED.get(flat_name, flat_name))
    return None if place is None else f"[{place[0]}] {place[1]}"


def nest_keywords(data: Mapping[str, Any]) -> dict[str, Any]:
    """Sections and keywords as sections: `{"max_depth": 2}` -> `{"budget": {"max_depth": 2}}`.

    Keywords win over the same setting in a section given alongside. A string for
    `sandbox` is its kind. Unknown names are left for validation to report."""
    nested: dict[str, Any] = {}
    leaves: list[tuple[str, str, Any]] = []
    index = keywords()
    for key, value in data.items():
        if key == "sandbox" and isinstance(value, str):
            leaves.append(("sandbox", "kind", value))
        elif key in SECTIONS:
            nested[key] = value
        elif key in index:
            leaves.append((*index[key], value))
        else:
            nested[key] = value
    for section, name, value in leaves:
        current = nested.get(section)
        if isinstance(current, BaseModel):
            current = current.model_dump(exclude_unset=True)
        elif current is None:
            current = {}
        nested[section] = {**current, name: value}
    return nested


def merge_settings(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` merged into `base`, table by table (a section given as a model counts
    with the fields that were set on it)."""
    result = dict(base)
    for key, value in update.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_settings(dict(result[key]), value)
        else:
            result[key] = value
    return result


def config_with(config: RLMConfig, **overrides: Any) -> RLMConfig:
    """A copy of `config` with `overrides` (sections or keywords; None values are
    ignored), validated."""
    given = nest_keywords({k: v for k, v in overrides.items() if v is not None})
    try:
        return RLMConfig.model_validate(merge_settings(config.model_dump(), given))
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, lambda _path: "arguments")) from exc


def describe_errors(exc: ValidationError, origin: Any) -> str:
    """One line per error, naming the setting and where its value came from.

    `origin(path)` names the source of the value at `path` (a tuple of names)."""
    lines = []
    for error in exc.errors():
        path = tuple(str(part) for part in error["loc"])
        name = ".".join(path) or "?"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            hint = moved_hint(path[-1]) if path else None
            message = "unknown setting" + (f"; it moved to {hint}" if hint else "")
        lines.append(f"{name} ({origin(path)}): {message}")
    return "invalid settings: " + "; ".join(lines)


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest rlm.toml from `start` (default: the working folder) upwards."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def load_config(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    search: bool = True,
    defaults: Mapping[str, Any] | None = None,
    defaults_source: str = "defaults",
    **overrides: Any,
) -> RLMConfig:
    """Merge `defaults` (a project's), rlm.toml, RLM_* variables and `overrides`
    (sections or keywords; None values are ignored), later sources winning. Errors name
    the source of each bad value."""
    from rlmrt.config._sources import gather

    return gather(
        config_file=config_file,
        env=os.environ if env is None else env,
        search=search,
        defaults=defaults or {},
        defaults_source=defaults_source,
        overrides=overrides,
    ).config()
