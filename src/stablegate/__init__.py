"""stablegate: a self-hosted, non-custodial stablecoin payment gateway."""

__version__ = "0.1.0"
