from tests.compat.greenfield.greenfield_support import greenfield

__all__ = ["greenfield"]
