"""Exception hierarchy: every user error names the field or value and what is allowed."""

from __future__ import annotations


class SmartnetError(Exception):
    """Root of all smartnet_gym errors; the CLI turns these into exit code 2."""


class ConfigError(SmartnetError, ValueError):
    """A scenario or training config is invalid (unknown field, out-of-range value, missing file)."""


class UnknownNameError(SmartnetError, KeyError):
    """A name (preset, scheme, grid code, env id) is not known; the message lists the allowed ones."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class BidError(SmartnetError, ValueError):
    """A bid book is invalid; the message names the bid row and the field."""


class ActionError(SmartnetError, ValueError):
    """An agent action is invalid (NaN/inf); the message names the action index."""


def did_you_mean(name: str, allowed: list[str] | tuple[str, ...], what: str) -> str:
    """Build an 'unknown X' message with a close match and the full list of allowed names."""
    import difflib

    close = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}.{hint} Allowed: {', '.join(sorted(allowed))}."
