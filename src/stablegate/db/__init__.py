"""Database layer: engine and sessions, the declarative base, column types (migrations:
stablegate.migrations)."""
