"""Running Python code in a fresh process with a chosen string hash seed, as another machine would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_with_hash_seed(code: str, *args: str, seed: int) -> str:
    """The standard output of `python -c code args...` run with `PYTHONHASHSEED=seed`."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": str(seed)})
    return done.stdout
