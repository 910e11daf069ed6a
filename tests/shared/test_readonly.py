"""``shared.readonly.ReadOnly``: a one-line read-only property."""

from __future__ import annotations

import pytest

from shared.readonly import ReadOnly


class _Inner:
    def __init__(self) -> None:
        self.name = "inner"


class _Owner:
    value: ReadOnly[int] = ReadOnly("_value", doc="The value.")
    name: ReadOnly[str] = ReadOnly("_inner.name")

    def __init__(self) -> None:
        self._value = 3
        self._inner = _Inner()


def test_reads_the_attribute_and_a_dotted_path_live() -> None:
    owner = _Owner()
    assert (owner.value, owner.name) == (3, "inner")
    owner._value = 4
    owner._inner.name = "changed"
    assert (owner.value, owner.name) == (4, "changed")


def test_is_a_property_that_cannot_be_set_and_keeps_its_doc() -> None:
    owner = _Owner()
    with pytest.raises(AttributeError):
        owner.value = 5  # type: ignore[assignment]
    assert owner.value == 3
    assert isinstance(_Owner.__dict__["value"], property)
    assert _Owner.__dict__["value"].__doc__ == "The value."
    assert _Owner.__dict__["name"].__doc__ is None
