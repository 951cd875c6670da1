from tests.compat.epay.epay_support import epay

__all__ = ["epay"]
