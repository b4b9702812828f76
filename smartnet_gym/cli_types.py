"""argparse value types shared by the command line and the training tools (messages name the flag)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(name: str, low: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``low``, with a message naming the flag."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer (got {text!r})") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low} (got {v})")
        return v
    return parse
