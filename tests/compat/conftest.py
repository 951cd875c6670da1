"""The Integrations page's tests sign up through the dashboard: its SMTP sink and settings."""

from __future__ import annotations

from tests.dashboard.conftest import mail, settings, signup_policy

__all__ = ["mail", "settings", "signup_policy"]
