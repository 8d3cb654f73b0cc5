"""An identity provider of the JWT tests: its keys (made with `cryptography`), a JWKS
served on 127.0.0.1 by a thread, and the tokens it signs (good and forged)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "rlmrt-tests"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """header.payload of a token made by hand (PyJWT refuses to make the forged ones)."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _public_jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "ES256"
    jwk.update(kid=kid, use="sig")
    return dict(jwk)


@dataclass
class IdentityProvider:
    """Signs tokens with its keys ("rsa": RS256, "ec": ES256) and serves their JWKS."""

    keys: dict[str, PrivateKey] = field(
        default_factory=lambda: {
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1()),
        }
    )
    server: ThreadingHTTPServer | None = None

    @property
    def jwks_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def toml(self) -> str:
        """The [server] settings of a server that trusts this provider."""
        return (
            f'jwt_jwks_url = "{self.jwks_url}"\n'
            f'jwt_issuer = "{ISSUER}"\njwt_audience = "{AUDIENCE}"\n'
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(kid, key) for kid, key in self.keys.items()]}

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def claims(**changes: Any) -> dict[str, Any]:
        """Good claims (tenant acme, may start runs), with `changes` (None: left out)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "tenant": "acme",
            "scope": "runs:write",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, kid: str = "rsa", key: PrivateKey | None = None, **changes: Any) -> str:
        """A token of `claims(**changes)` signed by the key `kid` (or by `key`, under the
        header's `kid`)."""
        signer = key if key is not None else self.keys[kid]
        algorithm = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(self.claims(**changes), signer, algorithm=algorithm, headers={"kid": kid})

    def unsigned_token(self, kid: str = "rsa", **changes: Any) -> str:
        """`alg: none`: no signature at all."""
        return _signing_input({"alg": "none", "kid": kid}, self.claims(**changes)) + "."

    def hs256_with_public_key(self, kid: str = "rsa", **changes: Any) -> str:
        """HS256, its HMAC secret the RSA key's public PEM (the algorithm-confusion attack)."""
        pem = serialization.Encoding.PEM
        secret = self.keys["rsa"].public_key().public_bytes(pem, serialization.PublicFormat.PKCS1)
        signing_input = _signing_input({"alg": "HS256", "kid": kid}, self.claims(**changes))
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"
