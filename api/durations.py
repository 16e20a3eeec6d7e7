"""Go-style durations, as Kubernetes flags take them (`300ms`, `10s`, `5m`, `1m30s`)."""

from __future__ import annotations

import argparse


def parse_duration(text: str) -> float:
    """Go-style durations as kube flags take them: 300ms, 10s, 5m, 1h, 1m30s."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] == "ms" else ch
        if unit not in units or not num:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (missing unit)")
    return total
