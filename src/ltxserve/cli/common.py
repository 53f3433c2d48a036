"""What every command shares: the console (stderr, so stdout stays for output) and settings."""

from __future__ import annotations

from rich.console import Console

from ..config import Settings

console = Console(stderr=True)


def settings_with(**overrides) -> Settings:
    """Settings from the environment and config file, with the command line's options on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
