"""Flag values as Kubernetes components take them (Go's strconv.ParseBool subset)."""

from __future__ import annotations

import argparse


def parse_bool(text: str) -> bool:
    """`--flag=true|false` (also 1/0, yes/no), for argparse `type=`."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")
