"""Images and recordings sent with a prompt: OpenAI's chat content parts (which both
clients pass on as they are), and whether a model takes them.

Items come from sandboxed code's `llm_query(images=..., audio=...)` as
``{"format", "data": base64}``, already checked by the host-function table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rlmrt.llm.base import ChatMessage

__all__ = ["media_parts", "media_refusal", "user_message"]

MediaKind = Literal["image", "audio"]

# what a `[llm] media_input` declaration lets through
_DECLARED: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "images": frozenset({"image"}),
    "audio": frozenset({"audio"}),
    "all": frozenset({"image", "audio"}),
}
# LiteLLM's model-info flag for each kind
_INFO_FLAG = {"image": "supports_vision", "audio": "supports_audio_input"}


def media_parts(
    images: Sequence[Mapping[str, str]], audio: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    """The content parts of `images` then `audio`, in OpenAI's chat format."""
    parts: list[dict[str, Any]] = [
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/{item['format']};base64,{item['data']}"},
        }
        for item in images
    ]
    parts.extend(
        {"type": "input_audio", "input_audio": {"data": item["data"], "format": item["format"]}}
        for item in audio
    )
    return parts


def user_message(prompt: str, parts: Sequence[dict[str, Any]]) -> ChatMessage:
    """The user message of `prompt`: plain text, or a text part then `parts`."""
    if not parts:
        return {"role": "user", "content": prompt}
    return {"role": "user", "content": [{"type": "text", "text": prompt}, *parts]}


def media_refusal(model: str, parts: Sequence[dict[str, Any]], declared: str) -> str | None:
    """Why `model` cannot be sent `parts`, or None when it can.

    `declared` is the `[llm] media_input` setting: "auto" asks LiteLLM's model info,
    and a model it does not know is sent the parts (its server then
    accepts or refuses them: never a silent drop here)."""
    kinds = sorted({"image" if p["type"] == "image_url" else "audio" for p in parts})
    if not kinds:
        return None
    if declared != "auto":
        missing = [kind for kind in kinds if kind not in _DECLARED[declared]]
        how = f'[llm] media_input = "{declared}"'
    else:
        info = _model_info(model)
        # a model LiteLLM knows takes what its info says it supports, and nothing else
        missing = [kind for kind in kinds if info and not info.get(_INFO_FLAG[kind])]
        how = "LiteLLM's model info"
    if not missing:
        return None
    return (
        f"model {model!r} does not take {' or '.join(_plural(k) for k in missing)} ({how});"
        " use a model that does (llm_query(..., model=...)), or if it does, set"
        ' [llm] media_input = "all" (RLM_LLM__MEDIA_INPUT=all)'
    )


def _plural(kind: str) -> str:
    return "images" if kind == "image" else "audio"


def _model_info(model: str) -> Mapping[str, Any]:
    from rlmrt.llm._litellm import import_litellm

    try:
        info = import_litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - LiteLLM raises a bare Exception for unknown models
        return {}
    return info if isinstance(info, Mapping) else {}
