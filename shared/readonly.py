"""``ReadOnly``: a read-only property that returns an attribute, declared in one line.

``encoder: ReadOnly[Encoder | None] = ReadOnly("_encoder")`` is the property
``def encoder(self): return self._encoder``; the path may be dotted
(``ReadOnly("_inner.identity")`` returns ``self._inner.identity``: a wrapper's
delegation). It is a real ``property`` (the getter is ``operator.attrgetter``): setting
it raises the same ``AttributeError``, ``help()`` lists it with its ``doc``, and type
checkers see the attribute's type, so a class satisfies a protocol's read-only
properties with it.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar, overload

__all__ = ["ReadOnly"]

T = TypeVar("T")


class ReadOnly(property, Generic[T]):
    # (No class docstring: a property subclass would show it as every instance's doc.)

    def __init__(self, path: str, doc: str | None = None) -> None:
        super().__init__(operator.attrgetter(path))
        self.__doc__ = doc

    if TYPE_CHECKING:
        # For type checkers: reading gives ``T``; an assignment is an error (a value of type Never).

        @overload
        def __get__(self, instance: None, owner: type | None = None, /) -> ReadOnly[T]: ...

        @overload
        def __get__(self, instance: object, owner: type | None = None, /) -> T: ...

        def __get__(self, instance: object | None, owner: type | None = None, /) -> T | ReadOnly[T]: ...

        def __set__(self, instance: object, value: NoReturn, /) -> None: ...
