"""The HTTP API (`rlm serve`, the `server` extra): an RLM behind the OpenAI API.

`app.create_app` builds the FastAPI application; `storage` keeps tenants, keys and runs
(SQLAlchemy, migrated by Alembic at start); `auth` checks the bearer keys; `routes`
are the endpoints. Like the other fronts it drives the engine (`Engine.run`) and
renders what the engine and `observe/` give it.
"""
