"""py-spy around a measured run, for bench/api.py and bench/webhooks.py: collapsed stacks, one
line per stack, for flamegraph.pl or ``bench/profile.py``. Sampling costs the profiled process
some CPU: figures of a profiled run are not the ones to report."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def py_spy_record(
    out_dir: Path | None,
    label: str,
    pid: int,
    *,
    subprocesses: bool = False,
    duration_s: float | None = None,
) -> Iterator[None]:
    """Sample ``pid`` (and its children with ``subprocesses``) while the block runs: for
    ``duration_s`` seconds when given, else until the block ends. Nothing without ``out_dir``."""
    if out_dir is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{label.replace(' ', '_').replace(',', '')}.txt"
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
    if subprocesses:
        command.append("--subprocesses")
    if duration_s is not None:
        command += ["--duration", str(max(1, round(duration_s)))]
    command += ["--rate", "250", "--format", "raw", "--output", str(out)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if duration_s is None:
        time.sleep(1.0)  # py-spy attaches before the run starts
    try:
        yield
    finally:
        if duration_s is None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        _, err = spy.communicate(timeout=60 if duration_s is None else duration_s + 30)
        # Stopped by SIGINT, py-spy's exit status says nothing: its output file does.
        failed = not out.exists() if duration_s is None else spy.returncode != 0
        if failed:
            print(f"   py-spy failed ({spy.returncode}): {err.decode(errors='replace')}")
        else:
            print(f"   py-spy profile: {out}", flush=True)
