"""Typed settings from a config section: the dataclass fields are picked, lists become tuples."""

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def settings_from(cls: type[T], section: dict[str, Any]) -> T:
    """Build the settings dataclass ``cls`` from the keys of ``section`` that name its fields.

    Parameters
    ----------
    cls : type
        A dataclass whose fields all have defaults.
    section : dict
        A validated config section (other keys, such as file paths, are ignored).

    Returns
    -------
    An instance of ``cls``.
    """
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items() if k in names})
