"""The gateway's own P-256 key that signs webhooks (V1), with a stable key id."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Request

from stablegate.config import Settings


@dataclass(frozen=True)
class GatewaySigningKey:
    private_key: ec.EllipticCurvePrivateKey
    key_id: str

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def load_signing_key(settings: Settings) -> GatewaySigningKey:
    if settings.signing_key is not None:
        pem = settings.signing_key.get_secret_value().encode()
    else:
        pem = _data_dir_pem(settings.data_dir / "webhook-signing-key.pem")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("STABLEGATE_SIGNING_KEY must be a P-256 private key in PEM")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return GatewaySigningKey(key, "gk_" + hashlib.sha256(der).hexdigest()[:16])


def _data_dir_pem(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return pem


def app_signing_key(request: Request) -> GatewaySigningKey:
    """The key of the app serving ``request`` (put in ``app.state`` by the app)."""
    key: GatewaySigningKey = request.app.state.signing_key
    return key
