"""Merchant API authentication: signing string, V1/V2 signatures, receive window, replay cache,
body rules, client IP and rate limits.

Framework-independent: nothing here imports FastAPI or the database. The API layer builds a
:class:`~stablegate.auth.verify.SignedRequest`, passes a key lookup and a replay store, and renders
the :class:`~stablegate.errors.GatewayError` subclasses these modules raise.
"""

from stablegate.auth.verify import AuthResult, KeyCredentials, SignedRequest, authenticate

__all__ = ["AuthResult", "KeyCredentials", "SignedRequest", "authenticate"]
