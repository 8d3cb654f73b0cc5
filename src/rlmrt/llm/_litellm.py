"""The one place that imports LiteLLM: offline price map, no console noise.

LiteLLM is imported on first use only (it takes seconds), never by `import rlmrt`.
Before the first import we set `LITELLM_LOCAL_MODEL_COST_MAP=True`: LiteLLM reads it
in `get_model_cost_map()` while its package initialises, and otherwise fetches its
price map from GitHub on import. rlmrt never lets it do that.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from types import ModuleType

_lock = threading.Lock()
_configured: ModuleType | None = None


def import_litellm() -> ModuleType:
    """Import LiteLLM with its bundled price map and its debug prints turned off."""
    global _configured
    if _configured is not None:
        return _configured
    with _lock:
        if _configured is None:
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            import litellm

            # No "Give Feedback / Get Help" and "Provider List" prints on errors.
            litellm.suppress_debug_info = True
            _prebuild_models(litellm)
            _configured = litellm
    return _configured


def _prebuild_models(litellm: ModuleType) -> None:
    """Build LiteLLM's lazily built pydantic models now, while warnings are silenced.

    The first `ModelResponse()` rebuilds the model schemas, and pydantic warns (a
    UserWarning naming `ChatCompletionReasoningItem`) about a `ReadOnly` TypedDict
    item in LiteLLM's types. Doing it here, once, keeps that noise away from users
    and from test runs that turn warnings into errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from litellm.types.utils import Delta, ModelResponseStream

        litellm.ModelResponse()
        ModelResponseStream()
        Delta(content="")
        # LiteLLM >= 1.110 imports this on every call, building a TypedDict with
        # `ReadOnly` items (the same pydantic warning): import it now, silenced
        with contextlib.suppress(ImportError):
            import litellm.llms.github_copilot.per_user_auth
