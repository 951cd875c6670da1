"""The console tests run the app (SQLite and PostgreSQL) as the dashboard tests do: the ``open``
sign-up policy and a real SMTP sink, unless a module overrides ``signup_policy``."""

from __future__ import annotations

from tests.dashboard.conftest import mail, settings, signup_policy

__all__ = ["mail", "settings", "signup_policy"]
