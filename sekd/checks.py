"""Checks of configuration values, with errors that name the key, the value and what is allowed
(the config sections and the objective's settings share them)."""

from __future__ import annotations


def choice(name: str, value, allowed) -> None:
    """`value` of the setting `name` must be one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def at_least(section, minimum, *keys) -> None:
    """Each `section.key` of a config dataclass must be >= minimum."""
    name = type(section).__name__.removesuffix("Config").lower()
    for key in keys:
        value = getattr(section, key)
        if value < minimum:
            raise ValueError(f"{name}.{key} must be >= {minimum}; got {value!r}")
