"""What the commands print for scripts: one JSON object on stdout (`--json`), nothing else there."""

import json
import sys
from typing import Any


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
