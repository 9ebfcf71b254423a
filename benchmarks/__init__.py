"""Benchmarks run by `make bench`; shared paths to the data outside the repository."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LASTMILE_SHARED", ROOT.parent / "shared"))
PORTO_METRO = SHARED / "osm" / "porto_drive.osm.bz2"


def scenario_text(scenario: str | Path, *, policy: str | None = None, express_model: bool = True) -> str:
    """A scenario file's text to write elsewhere (its map path made absolute), with `[policy] name` set to
    `policy` and, if not `express_model`, its `[promise.express_model]` table left out (quotes from the margins)."""
    path = ROOT / scenario
    text = path.read_text().replace('file = "maps/', f'file = "{path.parent}/maps/')
    if policy is not None:
        text = re.sub(r'(\[policy\]\nname = )"[a-z]+"', rf'\1"{policy}"', text)
    if not express_model:
        text = re.sub(r"\[promise\.express_model\]\n([a-z_]+ = [^\n]*\n)*", "", text)
    return text
