"""The one way a config section becomes typed settings: :func:`settings_from`.

Every part keeps its settings in a frozen dataclass whose fields are the keys of its config section (or of the part
of a section one rule reads, :data:`bayesrb.configuration.RULE_SETTINGS`). The defaults of those fields equal the
schema's (``workflow/schemas/config.schema.yaml``), which is where a user reads them; ``tests/test_settings.py``
checks that the two agree, so there is one set of defaults.
"""

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from bayesrb.errors import BadInputError

T = TypeVar("T")


def settings_from(cls: type[T], section: Mapping[str, Any] | None, where: str) -> T:
    """Build the settings dataclass ``cls`` from a config section.

    Parameters
    ----------
    cls : type
        A dataclass whose fields all have defaults. A field whose type is itself such a dataclass (e.g. the model's
        ``network``) is built from its sub-mapping the same way.
    section : mapping or None
        The section's keys; absent keys (or ``None``) take the defaults. Lists become tuples.
    where : str
        The section's key path in the config (e.g. ``"model"`` or ``"experiments.bcnn.model"``), for the messages.

    Returns
    -------
    An instance of ``cls``.

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming ``config {where}``: a key that is not a field of ``cls`` (with the known keys), or a value the class
        rejects.
    """
    section = dict(section or {})
    known = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise BadInputError(f"config {where}", f"unknown key(s) {unknown}; known keys are {sorted(known)}")
    types = typing.get_type_hints(cls)
    values = {name: _field_value(types[name], value, f"{where}.{name}") for name, value in section.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise BadInputError(f"config {where}", str(error)) from None


def _field_value(kind: Any, value: Any, where: str) -> Any:
    """A config value as the field of type ``kind`` holds it: a nested settings dataclass, a tuple, or as is."""
    if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
        return settings_from(kind, value, where)
    return tuple(value) if isinstance(value, list) else value


def settings_dict(settings: Any) -> dict[str, Any]:
    """The inverse of :func:`settings_from`: a JSON-serialisable dict (tuples as lists, nested settings as dicts)."""
    return _plain(dataclasses.asdict(settings))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
