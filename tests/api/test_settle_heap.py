"""The server freezes what it loaded before serving, so full collections skip it."""

from __future__ import annotations

import gc

from stablegate.api.server import settle_heap


def test_start_up_objects_are_frozen() -> None:
    gc.unfreeze()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 10_000  # the imported modules and their objects
        frozen = gc.get_freeze_count()
        made_after = [[n] for n in range(1000)]
        assert gc.get_freeze_count() == frozen  # what requests make stays collectable
        del made_after
    finally:
        gc.unfreeze()  # the test process goes on making and dropping apps
