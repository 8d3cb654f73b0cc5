"""Issue 19, rich inputs in runs: media in the REPL of each sandbox kind, sent with
`llm_query(images=..., audio=...)` as OpenAI content parts, refused for text-only
models; the root model's prompt describes them by metadata only."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from scripting import repl
from test_file_formats import write_docx, write_image, write_pdf, write_wav

from rlmrt.testing import scripted

KINDS = ["local", "process"]


def media_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    write_image(folder / "a.png", "PNG", (40, 30))
    write_wav(folder / "d.wav", 2.5)
    return folder


@pytest.mark.parametrize("kind", KINDS)
def test_llm_query_sends_images_and_audio_as_content_parts(
    serve, make_rlm, tmp_path: Path, kind: str
) -> None:
    folder = media_folder(tmp_path)
    code = (
        "img, rec = context['a.png'], context['d.wav']\n"
        "print(img.format, img.width, img.height, rec.format, rec.duration_s)\n"
        "first = rec.split(1.0)[0]\n"
        "FINAL(llm_query('What is shown and said?', images=[img], audio=[first]))"
    )
    server = serve(scripted(root=[repl(code)], sub="a red box and a hum"))
    result = make_rlm(server, sandbox=kind).completion("Describe the media.", folder)
    assert result.answer == "a red box and a hum"

    root, sub = server.requests
    first_prompt = "\n".join(str(m["content"]) for m in root.messages)
    assert "a.png: png 40x30" in first_prompt and "d.wav: wav, 2.50 s" in first_prompt
    png = (folder / "a.png").read_bytes()
    encoded = base64.b64encode(png).decode()
    assert encoded[:16] not in first_prompt  # metadata only, never the bytes

    [message] = [m for m in sub.messages if m["role"] == "user"]
    text, image, audio = message["content"]
    assert text == {"type": "text", "text": "What is shown and said?"}
    assert image == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}
    assert audio["type"] == "input_audio" and audio["input_audio"]["format"] == "wav"
    import io
    import wave

    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as piece:
        assert (piece.getnframes(), piece.getframerate()) == (8000, 8000)  # the first second


@pytest.mark.parametrize("kind", KINDS)
def test_a_text_only_model_is_refused_in_the_repl(
    serve, make_rlm, tmp_path: Path, kind: str
) -> None:
    folder = media_folder(tmp_path)
    code = (
        "errors = []\n"
        "for call in (lambda: llm_query('x', images=[context['a.png']]),\n"
        "             lambda: llm_query('x', images=[context['a.png']], model='gpt-3.5-turbo'),\n"
        "             lambda: llm_query('x', images=['not an image']),\n"
        "             lambda: llm_query('x', audio=[context['a.png']]),\n"
        "             lambda: llm_query('x', images=[b'plain bytes'])):\n"
        "    try:\n"
        "        call()\n"
        "    except (TypeError, ValueError) as exc:\n"
        "        kind = 'TypeError' if isinstance(exc, TypeError) else 'ValueError'\n"
        "        errors.append(f'{kind}: {exc}')\n"
        "FINAL('\\n'.join(errors))"
    )
    server = serve(scripted(root=[repl(code)], sub="never asked"))
    rlm = make_rlm(server, sandbox=kind, media_input="audio")
    lines = rlm.completion("q", folder).answer.splitlines()
    assert lines[0] == (
        "ValueError: model 'openai/test-model' does not take images"
        ' ([llm] media_input = "audio"); use a model that does (llm_query(..., model=...)),'
        ' or if it does, set [llm] media_input = "all" (RLM_LLM__MEDIA_INPUT=all)'
    )
    assert lines[1].startswith("ValueError: model 'gpt-3.5-turbo' does not take images")
    assert lines[2] == "TypeError: llm_query() images[0] must be an Image or bytes, got str"
    assert lines[3] == "TypeError: llm_query() audio[0] is image, not audio"
    assert lines[4] == (
        "ValueError: llm_query() images[0] is not a png/jpeg/webp/gif file (format: unknown)"
    )
    assert len(server.requests) == 1  # the root's: no sub-call was sent

    # "auto": a model LiteLLM does not know is sent them; gpt-3.5-turbo, which it knows
    # as text-only, is refused
    server = serve(scripted(root=[repl(code)], sub="never asked"))
    lines = make_rlm(server, sandbox=kind).completion("q", folder).answer.splitlines()
    assert lines[0] == (
        "ValueError: model 'gpt-3.5-turbo' does not take images (LiteLLM's model info);"
        " use a model that does (llm_query(..., model=...)), or if it does, set"
        ' [llm] media_input = "all" (RLM_LLM__MEDIA_INPUT=all)'
    )
    assert len(lines) == 4
    assert len(server.requests) == 2  # the root's and the unknown model's


def test_documents_reach_the_process_sandbox_as_data(serve, make_rlm, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "r.pdf", ["alpha page", "beta page"])
    write_docx(folder / "n.docx")
    code = (
        "pages = context['r.pdf']\n"
        "FINAL(f\"{len(pages)} {'beta' in pages[1]} {context['n.docx'][1].splitlines()[0]}\")"
    )
    server = serve(scripted(root=[repl(code)]))
    result = make_rlm(server, sandbox="process").completion("q", folder)
    assert result.answer == "2 True # Findings"
    first_prompt = "\n".join(str(m["content"]) for m in server.requests[0].messages)
    assert "Item types: {'n.docx': 'list', 'r.pdf': 'list'}" in first_prompt


def test_pillow_edits_in_the_local_sandbox(serve, make_rlm, tmp_path: Path) -> None:
    folder = media_folder(tmp_path)
    code = "part = context['a.png'].crop((0, 0, 10, 5))\nFINAL(f'{part.width}x{part.height}')"
    server = serve(scripted(root=[repl(code)]))
    assert make_rlm(server, sandbox="local").completion("q", folder).answer == "10x5"


def test_without_pillow_an_edit_says_so(serve, make_rlm, tmp_path: Path) -> None:
    """The process sandbox's Python runs isolated (-I -S): no site-packages, no Pillow."""
    folder = media_folder(tmp_path)
    code = (
        "try:\n"
        "    context['a.png'].crop((0, 0, 10, 5))\n"
        "except ImportError as exc:\n"
        "    FINAL(str(exc))"
    )
    server = serve(scripted(root=[repl(code)]))
    answer = make_rlm(server, sandbox="process").completion("q", folder).answer
    assert answer == (
        "editing an Image needs Pillow, which this sandbox cannot import; its bytes are in .data"
    )
