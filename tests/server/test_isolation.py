"""Tenants see only their own: tenant beta's key tries every id of tenant acme (runs,
their events, trajectories and cancel; files, their content and delete; a completion's
id) and gets a 404 with OpenAI's error body, never acme's data, nor acme's files in its
list; and the ids are unguessable. The API has no route that takes a session id or a
key id (keys are managed by `rlm keys`, not over HTTP): a test checks that every route
of the OpenAPI schema with an id in its path is one this suite tries."""

from __future__ import annotations

import re
import sqlite3
import time

import httpx
import openai
from serving import InProcessServer

SECRET = "acme-only-context-7f3a"
QUESTION = [{"role": "user", "content": "How long is the context?"}]


def auth(api: InProcessServer, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[key]}"}


def acme_ids(api: InProcessServer) -> tuple[str, str]:
    """A finished run and a file of tenant acme."""
    with openai.OpenAI(base_url=api.url, api_key=api.keys["acme"], max_retries=0) as acme:
        file_id = acme.files.create(file=("secret.txt", SECRET.encode()), purpose="user_data").id
    response = httpx.post(
        f"{api.url}/runs",
        headers=auth(api, "acme"),
        json={"model": "rlm", "messages": QUESTION, "context_files": [file_id]},
    )
    run_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while httpx.get(f"{api.url}/runs/{run_id}", headers=auth(api, "acme")).json()["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run_id, file_id


# every route with an id in its path, as tried below
TRIED = [
    ("GET", "/runs/{run_id}"),
    ("GET", "/runs/{run_id}/events"),
    ("GET", "/runs/{run_id}/trajectory"),
    ("POST", "/runs/{run_id}/cancel"),
    ("GET", "/files/{file_id}"),
    ("GET", "/files/{file_id}/content"),
    ("DELETE", "/files/{file_id}"),
]


def test_another_tenant_gets_404_for_every_id(api: InProcessServer) -> None:
    run_id, file_id = acme_ids(api)
    with openai.OpenAI(base_url=api.url, api_key=api.keys["acme"], max_retries=0) as acme:
        completion_id = acme.chat.completions.create(
            model="rlm", messages=QUESTION, extra_body={"context": SECRET}
        ).id
    # a completion is a run too (of kind "completion"): its id, as a run's
    completion_run = "run-" + completion_id.removeprefix("chatcmpl-")
    tries = [
        (method, template.format(run_id=ran, file_id=file_id))
        for method, template in TRIED
        for ran in (run_id, completion_run)
        if "{run_id}" in template or ran == run_id
    ]
    for method, path in tries:
        response = httpx.request(method, api.url + path, headers=auth(api, "beta"))
        assert response.status_code == 404, (method, path, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert SECRET not in response.text and "secret.txt" not in response.text
        # the same answer as for an id that never existed
        never = path.replace(run_id, "run-" + "0" * 52).replace(file_id, "file-" + "0" * 32)
        never = never.replace(completion_run, "run-" + "0" * 52)
        other = httpx.request(method, api.url + never, headers=auth(api, "beta"))
        assert other.status_code == 404
        assert other.json()["error"]["code"] == error["code"]
    # a run of acme's files is refused to beta as a context too
    completion = httpx.post(
        f"{api.url}/chat/completions",
        headers=auth(api, "beta"),
        json={"model": "rlm", "messages": QUESTION, "context_files": [file_id]},
    )
    assert completion.status_code == 404 and SECRET not in completion.text
    # beta's list of files holds none of acme's
    listed = httpx.get(f"{api.url}/files", headers=auth(api, "beta"))
    assert listed.status_code == 200
    assert file_id not in [found["id"] for found in listed.json()["data"]]
    # and nothing of acme's changed: its owner still reads both
    for path in (f"/runs/{run_id}", f"/files/{file_id}/content", f"/runs/{run_id}/trajectory"):
        assert httpx.get(api.url + path, headers=auth(api, "acme")).status_code == 200
    assert httpx.get(f"{api.url}/files/{file_id}/content", headers=auth(api, "acme")).text == SECRET
    assert httpx.get(f"{api.url}/runs/{run_id}", headers=auth(api, "acme")).json()["status"] == (
        "completed"
    )


def test_ids_are_unguessable(api: InProcessServer) -> None:
    """Run ids: the time, then 32 + 96 random bits; file ids: 128 random bits."""
    with openai.OpenAI(base_url=api.url, api_key=api.keys["acme"], max_retries=0) as acme:
        files = [acme.files.create(file=("f", b"x"), purpose="user_data").id for _ in range(3)]
    runs = [
        httpx.post(
            f"{api.url}/runs",
            headers=auth(api, "acme"),
            json={"model": "rlm", "messages": QUESTION, "context": "x"},
        ).json()["id"]
        for _ in range(3)
    ]
    for file_id in files:
        assert re.fullmatch(r"file-[0-9a-f]{32}", file_id), file_id
    for run_id in runs:
        found = re.fullmatch(r"run-\d{8}-\d{9}-([0-9a-f]{8})-([0-9a-f]{24})", run_id)
        assert found, run_id
    randoms = [re.sub(r"^run-\d{8}-\d{9}-", "", r) for r in runs]
    assert len(set(files)) == len(set(randoms)) == 3


def test_every_route_with_an_id_is_tried(api: InProcessServer) -> None:
    """No route takes an id this suite does not try as another tenant (the API has no
    route of sessions or keys)."""
    schema = httpx.get(f"{api.root}/openapi.json").json()
    with_ids = sorted(
        (method.upper(), path.removeprefix("/v1"))
        for path, operations in schema["paths"].items()
        if "{" in path
        for method in operations
    )
    assert with_ids == sorted(TRIED)


def test_a_tenants_memory_is_its_own(api: InProcessServer) -> None:
    def ask(key: str, question: str) -> str | None:
        with openai.OpenAI(base_url=api.url, api_key=api.keys[key], max_retries=0) as client:
            reply = client.chat.completions.create(
                model="rlm", messages=[{"role": "user", "content": question}]
            )
        return reply.choices[0].message.content

    assert (ask("acme", "PLEASE REMEMBER note-acme-7f3a") or "").startswith("mem-")
    # acme's later run recalls it from code and sees it pinned in its first prompt
    assert ask("acme", "PLEASE RECALL") == "['note-acme-7f3a'] True"
    # beta's run finds nothing, by code or in its prompt
    assert ask("beta", "PLEASE RECALL") == "[] False"
    with sqlite3.connect(api.database) as db:
        rows = db.execute(
            "SELECT t.name, m.text, m.pinned FROM memory_items m JOIN tenants t"
            " ON t.id = m.tenant_id"
        ).fetchall()
    assert rows == [("acme", "note-acme-7f3a", 1)]
