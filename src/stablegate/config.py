"""Settings, read once from ``STABLEGATE_*`` environment variables and passed in everywhere.

Defaults give a working embedded setup: a SQLite file and generated keys in the data dir.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


class SignupPolicy(StrEnum):
    """Who may sign up on the merchant dashboard (docs/DESIGN.md §9 "Merchant dashboard")."""

    OPEN = "open"  # anyone; log-in needs the emailed verification link
    APPROVAL = "approval"  # anyone; log-in waits for ``stablegate merchant approve``
    INVITE = "invite"  # only with a code from ``stablegate dashboard invite``


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STABLEGATE_", extra="ignore")

    data_dir: Path = Path(".stablegate")
    database_url: str | None = None
    redis_url: str | None = None
    chains_file: Path | None = None
    public_url: str = "http://127.0.0.1:8000"
    relayer_key: SecretStr | None = None
    signing_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    allow_private_webhooks: bool = False
    rate_limit_per_minute: int = Field(default=100, ge=1)
    # Reads made with the API key alone: a separate budget per key.
    unsigned_reads_per_minute: int = Field(default=100, ge=1)
    failed_auth_per_minute: int = Field(default=30, ge=1)
    public_per_minute: int = Field(default=300, ge=1)
    # Live-status streams (the cashier's server-sent events) open at once, per client IP (IPv6
    # per /64) and per API process; above either the stream is refused with 429 and the page polls.
    live_streams_per_ip: int = Field(default=20, ge=1)
    # Bounded so the shared poll's one query stays under the drivers' bound-parameter limits.
    live_streams_per_process: int = Field(default=500, ge=1, le=10_000)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    metrics_token: SecretStr | None = None
    # HTTP server limits (seconds, connections per process); see stablegate.api.server.
    keep_alive_timeout: int = Field(default=5, ge=1)
    header_timeout: int = Field(default=10, ge=1)
    body_timeout: int = Field(default=30, ge=1)
    max_connections: int = Field(default=1000, ge=1)
    # Largest order amount in whole token units; guards against fat-finger orders.
    max_order_amount: int = Field(default=1_000_000, ge=1)
    # Watcher: how long a silent leader keeps its lease; orders older than this are left to
    # reconciliation.
    watcher_lease_ttl_ms: int = Field(default=15_000, ge=1000)
    watch_days: int = Field(default=90, ge=1)
    # Watchdog of the watcher, sweeper and webhook worker: a step (or one delivery attempt)
    # making no progress for this long is logged with its stack and abandoned.
    step_timeout_s: float = Field(default=120.0, gt=0)
    # Prices in fiat (docs/DESIGN.md §10 "Exchange rates"). The defaults of every pair's rule:
    # which sources, how they are combined (median | first), the spread taken off the rate, how
    # old a market quote may be, how far sources may disagree. An empty list of sources leaves
    # only fixed rates (``stablegate rates set-fixed``).
    rate_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["kraken", "coinbase", "okx", "coingecko", "binance"]
    )
    rate_method: str = "median"
    rate_spread_pct: Decimal = Field(default=Decimal(0), ge=0, lt=50)
    rate_max_age_s: int = Field(default=300, ge=10)
    rate_band_pct: Decimal = Field(default=Decimal(2), gt=0, le=50)
    # A stablecoin more than this far from its peg is logged as an alert and shown in metrics;
    # more than rate_sanity_pct off (against the ECB cross) and it is not used at all.
    rate_peg_alert_pct: Decimal = Field(default=Decimal(2), gt=0)
    rate_sanity_pct: Decimal = Field(default=Decimal(10), gt=0, le=50)
    # The ECB publishes once per working day: four days cover a long weekend.
    fiat_max_age_s: int = Field(default=4 * 86400, ge=3600)
    rate_refresh_s: float = Field(default=60.0, ge=1)
    rate_fetch_timeout_s: float = Field(default=10.0, gt=0)
    rate_history_days: int = Field(default=90, ge=1)
    # Each source's base URL, for a proxy or a local test server.
    rate_binance_url: str = "https://api.binance.com"
    rate_okx_url: str = "https://www.okx.com"
    rate_kraken_url: str = "https://api.kraken.com"
    rate_coinbase_url: str = "https://api.coinbase.com"
    rate_coingecko_url: str = "https://api.coingecko.com"
    rate_ecb_url: str = "https://www.ecb.europa.eu"
    # The merchant dashboard: who may sign up, and the mail server for its links
    # (smtp://, smtp+starttls:// or smtps://, user and password in the URL).
    signup_policy: SignupPolicy = SignupPolicy.APPROVAL
    smtp_url: SecretStr | None = None
    smtp_from: str | None = None
    log_format: str = "console"
    log_level: str = "INFO"

    @field_validator("trusted_proxies", "rate_sources", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
            # The URL holds a password: name the rule, not the value.
            raise ValueError(
                "STABLEGATE_SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host,"
                " e.g. smtp+starttls://user:password@mail.example.com:587"
            )
        return value

    @model_validator(mode="after")
    def _open_signup_needs_mail(self) -> Self:
        if self.signup_policy == SignupPolicy.OPEN and self.smtp_url is None:
            raise ValueError(
                "STABLEGATE_SIGNUP_POLICY=open needs STABLEGATE_SMTP_URL: open sign-ups must"
                " verify their email address by a mailed link. Set the SMTP URL, or choose the"
                " approval or invite policy."
            )
        return self

    @property
    def mail_sender(self) -> str:
        """The From address of the dashboard's mail: STABLEGATE_SMTP_FROM, else noreply at the
        public URL's host."""
        return self.smtp_from or f"noreply@{urlsplit(self.public_url).hostname or 'localhost'}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'stablegate.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        """The embedded default: SQLite in the data dir, keys may be generated there."""
        return self.effective_database_url.startswith("sqlite")

    @property
    def trusted_proxy_networks(self) -> list[IPNetwork]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]
