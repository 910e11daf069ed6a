"""The context-manager protocol of everything that holds a store: one home for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self


class Closing:
    """``with`` / ``async with`` support for a class with ``close()`` and ``aclose()``: the
    block's end closes it (sync or async)."""

    __slots__ = ()

    if TYPE_CHECKING:

        def close(self) -> None: ...

        async def aclose(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def closed_on_error(self) -> ClosedOnError:
        """A ``with`` / ``async with`` block that closes this (sync or async) only when the block
        fails: how a constructor that fills a new store returns it open or leaves nothing open."""
        return ClosedOnError(self)


class ClosedOnError:
    """See :meth:`Closing.closed_on_error` (any exception, ``KeyboardInterrupt`` included)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Closing) -> None:
        self._owner = owner

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self._owner.close()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            await self._owner.aclose()


__all__ = ["ClosedOnError", "Closing"]
