"""Issue 19: `Image` and `Audio` values cross into every sandbox kind and back, as
objects with their metadata (JSON over the kernel channel, `MEDIA_TAG`)."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator

import pytest
from remote_helpers import kind_options, kind_params

from rlmrt.errors import MissingDependencyError
from rlmrt.sandbox import SANDBOXES, Limits, SandboxBackend, create_backend
from rlmrt.sandbox.kernel import Audio, Image

LIMITS = Limits(exec_timeout_s=20, memory_mb=512, output_bytes=100_000)


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(rate)
        recording.writeframes(b"\x00\x01" * int(rate * seconds))
    return out.getvalue()


@pytest.fixture(params=kind_params(SANDBOXES.names()))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SandboxBackend]:
    try:
        started = create_backend(
            request.param, limits=LIMITS, options=kind_options(request, request.param)
        )
        await started.start()
    except MissingDependencyError as exc:
        pytest.skip(f"the {request.param} sandbox cannot start here: {exc}")
    try:
        yield started
    finally:
        await started.aclose()


async def test_media_cross_into_every_kind_and_back(backend: SandboxBackend) -> None:
    picture = Image(b"\x89PNG\r\n\x1a\nfake", "png", width=3, height=2)
    recording = Audio(wav_bytes(2.5), "wav", duration_s=2.5, sample_rate=8000, channels=1)
    await backend.load_context({"a.png": picture, "d.wav": recording, "t.txt": "text"})
    result = await backend.execute(
        "img, rec = context['a.png'], context['d.wav']\n"
        "pieces = rec.split(1.0)\n"
        "print(repr(img), img.width, img.height, img.data[:4])\n"
        "print(rec.format, rec.duration_s, [p.duration_s for p in pieces])"
    )
    assert result.error is None, result.error
    assert result.stdout.splitlines() == [
        "<Image png 3x2, 12 bytes> 3 2 b'\\x89PNG'",
        "wav 2.5 [1.0, 1.0, 0.5]",
    ]
    await backend.execute("first = context['d.wav'].split(1.0)[0]")
    first = await backend.get_variable("first")
    assert isinstance(first, Audio) and (first.duration_s, first.sample_rate) == (1.0, 8000)
    assert await backend.get_variable("img") == picture
