"""`/v1/files` with the official openai client: upload (streamed to disk, checksummed,
size-limited), list, get, content, delete, audited; `context_files` as the context."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from serving import RLM_TOML, InProcessServer, serving

from rlmrt.server.storage import Store

QUESTION = [{"role": "user", "content": "How long is the context?"}]
SMALL_LIMIT = 4096


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """A server that takes files of at most `SMALL_LIMIT` bytes and JSON bodies of 2 KiB."""
    folder = tmp_path_factory.mktemp("small")
    toml = RLM_TOML + f"\n[server]\nmax_upload_bytes = {SMALL_LIMIT}\nmax_request_bytes = 2048\n"
    with serving(folder, toml) as server:
        yield server


def client(api: InProcessServer, key: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url, api_key=api.keys[key], max_retries=0)


def auth(api: InProcessServer, key: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[key]}"}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def stored(api: InProcessServer) -> set[str]:
    folder = api.home / "files"
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def audited(api: InProcessServer) -> list[tuple[str, str | None, dict[str, Any]]]:
    async def records() -> list[tuple[str, str | None, dict[str, Any]]]:
        store = await Store.open(f"sqlite+aiosqlite:///{api.database}")
        try:
            found = await store.audit_records()
        finally:
            await store.aclose()
        return [(r.action, r.target, json.loads(r.detail)) for r in found]

    import asyncio

    return asyncio.run(records())


def test_upload_list_get_content_delete(api: InProcessServer) -> None:
    data = "line one\nline two ü\n".encode() * 1000
    with client(api) as openai_client:
        made = openai_client.files.create(file=("notes.txt", data), purpose="user_data")
        assert made.id.startswith("file-") and made.bytes == len(data)
        assert made.filename == "notes.txt" and made.purpose == "user_data"
        extra = made.model_extra or {}
        assert extra["sha256"] == hashlib.sha256(data).hexdigest()
        assert (api.home / "files" / made.id).read_bytes() == data
        assert (api.home / "files" / made.id).stat().st_mode & 0o077 == 0

        assert made.id in [f.id for f in openai_client.files.list()]
        assert openai_client.files.retrieve(made.id).bytes == len(data)
        assert openai_client.files.content(made.id).read() == data

        deleted = openai_client.files.delete(made.id)
        assert deleted.deleted is True and deleted.id == made.id
        assert made.id not in stored(api)
        with pytest.raises(openai.NotFoundError):
            openai_client.files.retrieve(made.id)
    actions = [(action, target) for action, target, _ in audited(api)]
    assert ("file.upload", made.id) in actions and ("file.delete", made.id) in actions
    upload = next(d for a, t, d in audited(api) if a == "file.upload" and t == made.id)
    assert upload == {"bytes": len(data), "sha256": extra["sha256"], "purpose": "user_data"}


def test_a_list_holds_only_the_callers_tenants_files(api: InProcessServer) -> None:
    with client(api) as acme, client(api, "beta") as beta:
        mine = acme.files.create(file=("a.txt", b"acme's"), purpose="user_data")
        theirs = beta.files.create(file=("b.txt", b"beta's"), purpose="user_data")
        assert mine.id in {f.id for f in acme.files.list()}
        assert theirs.id not in {f.id for f in acme.files.list()}
        assert mine.id not in {f.id for f in beta.files.list()}


def test_one_context_file_is_its_text(api: InProcessServer) -> None:
    with client(api) as openai_client:
        made = openai_client.files.create(file=("ctx.txt", b"x" * 1234), purpose="user_data")
        reply = openai_client.chat.completions.create(
            model="rlm",
            messages=QUESTION,
            extra_body={"context_files": [made.id]},  # type: ignore[arg-type]
        )
    assert reply.choices[0].message.content == "1234"


def test_several_context_files_are_a_dict_of_names(api: InProcessServer) -> None:
    with client(api) as openai_client:
        ids = [
            openai_client.files.create(file=(name, b"text"), purpose="user_data").id
            for name in ("a.txt", "b.txt", "a.txt")
        ]
        reply = openai_client.chat.completions.create(
            model="rlm",
            messages=QUESTION,
            extra_body={"context_files": ids},  # type: ignore[arg-type]
        )
    assert reply.choices[0].message.content == "3"  # three entries: the second a.txt kept


def test_context_files_errors(api: InProcessServer) -> None:
    with client(api) as acme, client(api, "beta") as beta:
        theirs = beta.files.create(file=("b.txt", b"beta's"), purpose="user_data")
        binary = acme.files.create(file=("b.bin", b"\xff\xfe\x00"), purpose="user_data")
    cases = [
        ({"context_files": [theirs.id]}, 404, "context_files"),
        ({"context_files": ["file-nope"]}, 404, "context_files"),
        ({"context_files": [binary.id]}, 400, "context_files"),
        ({"context_files": [binary.id], "context": "x"}, 400, "context_files"),
        ({"context_files": []}, 400, "context_files"),
    ]
    for extra, status, param in cases:
        response = httpx.post(
            f"{api.url}/chat/completions",
            headers=auth(api),
            json={"model": "rlm", "messages": QUESTION, **extra},
        )
        assert response.status_code == status, (extra, response.text)
        assert error_of(response)["param"] == param


def test_bad_uploads_are_400_and_keep_nothing(api: InProcessServer) -> None:
    before = stored(api)
    url = f"{api.url}/files"
    no_purpose = httpx.post(url, headers=auth(api), files={"file": ("a.txt", b"abc")})
    assert no_purpose.status_code == 400 and error_of(no_purpose)["param"] == "purpose"
    for bad in ("", "null", "user data", "fine_tune"):
        refused = httpx.post(
            url, headers=auth(api), files={"file": ("a.txt", b"abc")}, data={"purpose": bad}
        )
        assert refused.status_code == 400 and error_of(refused)["param"] == "purpose", bad
    purpose = b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
    a_file = b'--B\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc\r\n'
    bodies = {  # what the message says, for each
        "no file": (purpose + b"--B--\r\n", "no file"),
        "one file per upload": (purpose + a_file + a_file + b"--B--\r\n", "one file"),
        "no name": (
            b"--B\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--B--\r\n",
            "has no name",
        ),
        "cut short": (purpose + a_file[:-2], "ended before the file did"),
        "not multipart": (b"--C\r\n\x00\r\n", "not valid"),
        "field too long": (
            purpose.replace(b"user_data", b"u" * 70_000) + a_file + b"--B--\r\n",
            "'purpose' is too long",
        ),
    }
    for why, (body, says) in bodies.items():
        response = httpx.post(
            url,
            headers={**auth(api), "Content-Type": "multipart/form-data; boundary=B"},
            content=body,
        )
        assert response.status_code == 400, (why, response.text)
        assert says in error_of(response)["message"], (why, response.text)
    as_json = httpx.post(url, headers=auth(api), json={"purpose": "user_data"})
    assert as_json.status_code == 400
    assert "multipart/form-data" in error_of(as_json)["message"]
    assert stored(api) == before


def test_an_upload_over_the_limit_is_413_and_its_partial_file_removed(
    small: InProcessServer,
) -> None:
    with client(small) as openai_client:
        fits = openai_client.files.create(file=("ok.txt", b"a" * SMALL_LIMIT), purpose="user_data")
        assert fits.bytes == SMALL_LIMIT
        with pytest.raises(openai.APIStatusError) as raised:
            openai_client.files.create(
                file=("big.txt", b"a" * (SMALL_LIMIT + 1)), purpose="user_data"
            )
    assert raised.value.status_code == 413
    assert stored(small) == {fits.id}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'
        for _ in range(SMALL_LIMIT // 1024 + 4):
            yield b"b" * 1024
        yield b"\r\n--xyz--\r\n"

    streamed = httpx.post(
        f"{small.url}/files",
        headers={**auth(small), "Content-Type": "multipart/form-data; boundary=xyz"},
        content=chunks(),
    )
    assert streamed.status_code == 413, streamed.text
    assert error_of(streamed)["code"] == "file_too_large"
    assert stored(small) == {fits.id}


def test_json_bodies_over_the_cap_are_413(small: InProcessServer) -> None:
    body = {"model": "rlm", "messages": QUESTION, "context": "x" * 4000}
    declared = httpx.post(f"{small.url}/chat/completions", headers=auth(small), json=body)
    assert declared.status_code == 413
    assert "server.max_request_bytes" in error_of(declared)["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length
        yield json.dumps(body).encode()

    streamed = httpx.post(
        f"{small.url}/runs",
        headers={**auth(small), "Content-Type": "application/json"},
        content=chunks(),
    )
    assert streamed.status_code == 413
    assert "server.max_request_bytes" in error_of(streamed)["message"]
    fits = httpx.post(
        f"{small.url}/chat/completions",
        headers=auth(small),
        json={"model": "rlm", "messages": QUESTION, "context": "x" * 100},
    )
    assert fits.status_code == 200, fits.text


def test_a_file_streams_to_disk_never_whole_in_memory(api: InProcessServer) -> None:
    """64 MiB sent in pieces (the server runs in this process: its allocations are
    traced): the server holds a few pieces at a time, not the file."""
    piece = bytes(range(256)) * 256  # 64 KiB
    pieces = 1024
    digest = hashlib.sha256()
    for _ in range(pieces):
        digest.update(piece)

    def body() -> Iterator[bytes]:
        yield b'--b0undary\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        yield b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n\r\n'
        for _ in range(pieces):
            yield piece
        yield b"\r\n--b0undary--\r\n"

    tracemalloc.start()
    try:
        response = httpx.post(
            f"{api.url}/files",
            headers={**auth(api), "Content-Type": "multipart/form-data; boundary=b0undary"},
            content=body(),
            timeout=120,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    made = response.json()
    assert made["bytes"] == len(piece) * pieces and made["sha256"] == digest.hexdigest()
    assert (api.home / "files" / made["id"]).stat().st_size == made["bytes"]
    assert peak < 16 << 20, f"{peak:,} bytes at the peak"
