"""Checks on metric options, made before anything is traced or compiled."""

from __future__ import annotations

import numbers


def check_in_range(
    caller: str, name: str, value, low: float, high: float, *, closed: str = "both"
) -> None:
    """Raise ValueError unless low ≤ value ≤ high (`closed`: "both", "left", "right", "neither").

    A traced value (the option passed through `jax.jit` by a caller) cannot be checked and is let
    through.
    """
    if not isinstance(value, numbers.Real):
        return
    above = value >= low if closed in ("both", "left") else value > low
    below = value <= high if closed in ("both", "right") else value < high
    if not (above and below):
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"{caller}: {name} must be in {left}{low}, {high}{right}, got {value}")


def check_same_trailing(caller: str, names: tuple[str, str], a, b, axes: int) -> None:
    """Raise ValueError unless a and b agree on their last `axes` axes (batch, d_in, …)."""
    if a.shape[-axes:] != b.shape[-axes:]:
        raise ValueError(
            f"{caller}: {names[0]} and {names[1]} must agree on their last {axes} axes, got "
            f"shapes {a.shape} and {b.shape}"
        )
