"""The rlmrt exception hierarchy.

```
RLMError                         every error rlmrt raises
├── UsageError                   misuse: the caller must change something
│   ├── ConfigError              bad setting, unknown sandbox/model kind, bad rlm.toml
│   ├── ContextError             the context cannot be read or has an unsupported type
│   └── MissingDependencyError   an optional extra is not installed
└── RunError                     a failure at run time (not the caller's fault)
    ├── ModelError               the model call failed (carries status and body)
    │   ├── ModelAuthError       missing or rejected API key
    │   ├── ModelNotFoundError   the provider does not know the model
    │   ├── ModelConnectionError server unreachable or timed out (after retries)
    │   └── ModelResponseError   the reply could not be understood
    ├── SandboxError             the sandbox failed (not the user's code)
    │   ├── SandboxClosedError   the sandbox was used after close()
    │   └── KernelTimeout        the sandbox kernel did not answer a request in time
    ├── BudgetExceededError      a limit of the run tree was reached (names it)
    ├── ToolError                a tool call failed on the host, or the tool is not offered
    ├── PullError                no source could deliver a local model's file
    ├── ServerError              the local model server did not start or answer
    └── SetupError               a set-up step failed (a package install, a daemon start)
```

Errors raised by sandboxed code are not exceptions on the host: they are data in
`ExecResult.error`, shown to the model, because fixing them is the model's job.
"""

from __future__ import annotations


class RLMError(Exception):
    """Base class of every error raised by rlmrt."""


class UsageError(RLMError):
    """The caller used rlmrt wrongly; the message says what to change."""


class ConfigError(UsageError):
    """A setting is invalid (argument, environment variable or rlm.toml)."""


class ContextError(UsageError):
    """The context cannot be loaded (unreadable path, unsupported type)."""


class MissingDependencyError(UsageError):
    """An optional dependency is missing; the message names the extra to install (or,
    as `message`, another way to install what is not a Python package)."""

    def __init__(self, package: str, extra: str, *, message: str | None = None) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            message or f"{package} is not installed; install it with: pip install 'rlmrt[{extra}]'"
        )


class RunError(RLMError):
    """Something failed at run time: a run, a model download, the local model server."""


class ModelError(RunError):
    """A model call failed. `status` and `body` come from the provider when known;
    `attempts` is how many requests were made (retries included)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.body = body
        self.attempts = attempts
        super().__init__(message)


class ModelAuthError(ModelError):
    """The API key is missing or was rejected."""


class ModelNotFoundError(ModelError):
    """The provider does not know the requested model."""


class ModelConnectionError(ModelError):
    """The model server could not be reached or did not answer in time (after retries)."""


class ModelResponseError(ModelError):
    """The model server answered with something that is not a usable completion."""


class SandboxError(RunError):
    """The sandbox itself failed (as opposed to the code run in it)."""


class SandboxClosedError(SandboxError):
    """The sandbox was used after it was closed."""


class KernelTimeout(SandboxError):
    """The kernel did not answer a request in time (its channel is unusable after it:
    the backend restarts the kernel)."""


class ToolError(RunError):
    """A tool (`tools.NAME(...)` in code) failed on the host, timed out, returned too
    much, or is not offered; the message names the tool. Code sees it as its error."""


class BudgetExceededError(RunError):
    """A limit of the run tree was reached. `limit` names it (e.g. "max_tokens")."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class PullError(RunError):
    """No source could deliver the local model file (`rlm model pull`)."""


class ServerError(RunError):
    """The local model server could not be started or did not answer."""


class SetupError(RunError):
    """A set-up step (`rlm setup`) failed: a package did not install, a daemon did not
    start; the message holds the end of the failed command's output."""
