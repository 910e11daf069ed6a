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


__all__ = ["Closing"]
