"""Benchmarks run by `make bench`; shared paths to the data outside the repository."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LASTMILE_SHARED", ROOT.parent / "shared"))
PORTO_METRO = SHARED / "osm" / "porto_drive.osm.bz2"
