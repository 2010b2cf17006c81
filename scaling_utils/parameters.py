"""One notebook parameter: its type, meaning, allowed values and value in each profile, and the
check that turns a value given on the command line or to papermill into a valid one (or an
error naming the problem and the fix).  :mod:`.profiles` declares every notebook's."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: its type, meaning, allowed values and value in each profile."""

    name: str
    kind: type
    help: str
    smoke: Any
    cpu: Any
    gpu: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    optional: bool = False  # None is a meaningful value (e.g. "the offline default model")
    prefixes: tuple | None = None  # a string must start with one of these, then ":" or end
    items: str | None = None  # a tuple's elements: "size" (layers, width, heads) or "count"

    def profile_value(self, profile: str) -> Any:
        return getattr(self, profile)

    def check(self, value: Any) -> Any:
        """Return ``value`` converted to ``kind``, or raise ParameterError saying what is wrong."""
        if value is None:
            if self.optional:
                return None
            raise ParameterError(f"parameter {self.name!r} must not be None. {self._usage()}")
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if self.kind is tuple and isinstance(value, list):  # papermill -y gives lists
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        wrong_bool = isinstance(value, bool) and self.kind is not bool
        if wrong_bool or not isinstance(value, self.kind):
            raise ParameterError(
                f"parameter {self.name!r} must be of type {self.kind.__name__}, got "
                f"{value!r} ({type(value).__name__}). {self._usage()}"
            )
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}."
            )
        if self.prefixes is not None and value.partition(":")[0] not in self.prefixes:
            raise ParameterError(
                f"parameter {self.name!r} must start with one of {list(self.prefixes)}, got "
                f"{value!r}. {self._usage()}"
            )
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(
                f"parameter {self.name!r} must be >= {self.minimum}, got {value!r}. {self._usage()}"
            )
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(
                f"parameter {self.name!r} must be <= {self.maximum}, got {value!r}. {self._usage()}"
            )
        if self.items is not None:
            value = self._check_items(value)
        return value

    def _check_items(self, value: tuple) -> tuple:
        """Each element of a tuple parameter has the shape and type its ``items`` names; whole
        floats and numpy integers become ints, as for a single int parameter."""
        def fail(problem: str):
            raise ParameterError(f"parameter {self.name!r}: {problem}, got {value!r}. "
                                 f"{self._usage()} Example: {self.name}: {_EXAMPLES[self.items]}")

        from .train import StudentSpec

        if not value:
            fail("needs at least one value")
        items = []
        for item in value:
            if self.items == "size":
                size = tuple(map(_count, item)) if isinstance(item, tuple) else None
                if not size or len(size) != 3 or None in size:
                    fail(f"each size must be three positive integers (layers, width, heads); "
                         f"{item!r} is not")
                try:
                    StudentSpec(*size)
                except ValueError as err:
                    fail(f"size {item!r}: {err}")
                items.append(size)
            elif _count(item) is None:
                fail(f"each value must be a positive integer; {item!r} is not")
            else:
                items.append(_count(item))
        if len(set(items)) != len(items):
            fail("lists a value twice")
        return tuple(items)

    def _usage(self) -> str:
        return f"({self.name}: {self.help})"


_EXAMPLES = {"size": "[[1, 16, 2], [2, 64, 4]]  (command line: -p 'sizes=[[1, 16, 2], [2, 64, 4]]')",
             "count": "[65536, 262144]  (command line: -p 'D=[65536, 262144]')"}


def _count(value: Any) -> int | None:
    """``value`` as a positive int (whole floats and numpy integers too), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral) or float(value).is_integer():
        return int(value) if value >= 1 else None
    return None
