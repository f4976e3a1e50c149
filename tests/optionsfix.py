"""Values that tests of engines' options give on a command line, one per field type."""

from __future__ import annotations

import typing


def probe(annotation) -> tuple[str | None, object]:
    """A command-line word that sets a field of this type to a value other than its default, and
    that value; a bool field is a switch, given without a word."""
    kinds = set(typing.get_args(annotation)) or {annotation}
    if bool in kinds:
        return None, True
    if int in kinds:
        return "7", 7
    if float in kinds:
        return "0.75", 0.75
    return "probe", "probe"
