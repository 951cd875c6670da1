"""The distribution version (also sent as User-Agent)."""

__version__ = "0.1.0"
