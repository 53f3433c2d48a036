"""The README's table of settings, made from `Settings` itself so that the two never disagree:
`python -m ltxserve.settings_table README.md` rewrites the table between its markers, and `--check` fails
(exit 1) when it has drifted; the tests run the check."""

from __future__ import annotations

import argparse
import json
import sys
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .config import Settings

BEGIN = "<!-- settings table: made by `python -m ltxserve.settings_table README.md`; do not edit by hand -->"
END = "<!-- end of settings table -->"


def _shown(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        home = Path.home()
        return f"`~/{value.relative_to(home)}`" if value.is_relative_to(home) else f"`{value}`"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value, default=lambda item: float(item) if isinstance(item, Decimal) else str(item))}`"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"`{value}`" if isinstance(value, str) else str(value)


def _listed(literal: Any) -> str:
    return ", ".join(f"`{choice}`" for choice in typing.get_args(literal))


def _choices(annotation: Any) -> str:
    """The values a setting takes, where its type lists them."""
    if typing.get_origin(annotation) is typing.Literal:
        return f" (one of {_listed(annotation)})"
    if typing.get_origin(annotation) is dict:
        keys = typing.get_args(annotation)[0]
        return f" (for each of {_listed(keys)})" if typing.get_origin(keys) is typing.Literal else ""
    return ""


def table() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description for the README")
        meaning = (field.description + _choices(field.annotation)).replace("|", r"\|")
        rows.append(f"| `LTXSERVE_{name.upper()}` | {_shown(field.get_default(call_default_factory=True))} | "
                    f"{meaning} |")
    return "\n".join([BEGIN, *rows, END])


def rewrite(text: str) -> str:
    """`text` with the table between its markers made anew."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + table() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("readme", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table differs from Settings")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    made = rewrite(text)
    if args.check:
        if made != text:
            print(f"{args.readme}: the settings table differs from Settings; run python -m ltxserve.settings_table "
                  f"{args.readme}", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(made)
    return 0


if __name__ == "__main__":
    sys.exit(main())
