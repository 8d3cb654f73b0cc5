"""When a run uses the local model, and the settings that point it there.

A configured model always wins. With none configured and no provider API key in the
environment (nothing else could work), runs use the default local model: its server
is started (or reused) and the run talks to it on 127.0.0.1 over the OpenAI API.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from rlmrt.config import RLMConfig, config_with
from rlmrt.llm.provider_keys import keys_present
from rlmrt.local.catalog import LocalModel, get_model

__all__ = ["local_default_reason", "use_local_model"]

log = logging.getLogger("rlmrt")


def local_default_reason(config: RLMConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Why a run with `config` uses the local model; None when it does not."""
    if config.llm.model or config.llm.api_key is not None or keys_present(env):
        return None
    return "no model configured and no provider API key in the environment"


def use_local_model(config: RLMConfig, model: LocalModel | None = None) -> RLMConfig:
    """`config` pointed at the local model's server (started if it is not running)."""
    from rlmrt.local.server import ensure_server

    model = model or get_model(None)
    info = ensure_server(model)
    log.info("using the local model %s at %s", model.name, info.base_url)
    return config_with(
        config,
        model=f"openai/{model.name}",
        api_base=info.base_url,
        api_key="local",  # the server asks for none; the client wants one to send
        context_window_tokens=config.prompt.context_window_tokens or model.context_tokens,
        # a small model is steadier at temperature 0 (the engine breaks its loops)
        temperature=0.0 if config.llm.temperature is None else config.llm.temperature,
        seed=0 if config.llm.seed is None else config.llm.seed,
    )
