"""How a tool benchmark records its figures: the machine it ran on and one JSON file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> str:
    """One line naming the cores, processor, Python and the 1-minute load average now.

    Timings from a shared machine mean little without its load, so every benchmark records it.
    """
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, no GPU used, load average {load:.1f}")


def save_json(path: Path | str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON to ``path`` (folders made as needed) and say so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
