"""The emulator's typed reading of request parameters: list parameters of strings and of objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emrops.emulator.errors import EmulatorError
from emrops.emulator.params import Params


def test_lists_are_read_in_order_and_absent_ones_are_empty() -> None:
    params = Params({"NodeIds.1": "i-1", "NodeIds.2": "i-2", "Tags.1.Key": "k", "Tags.1.Value": "v"})
    assert params.strings("NodeIds") == ["i-1", "i-2"]
    assert params.objects("Tags") == [{"Key": "k", "Value": "v"}]
    assert params.strings("NodeNames") == [] and params.objects("Labels") == []


@pytest.mark.parametrize(
    ("flat", "read"),
    [
        ({"NodeIds": "i-1"}, Params.strings),  # a scalar, not a list
        ({"NodeIds.1.Id": "i-1"}, Params.strings),  # a list of objects, not of strings
        ({"Tags": "k"}, Params.objects),
        ({"Tags.1": "k"}, Params.objects),  # a list of strings, not of objects
    ],
)
def test_a_list_of_the_wrong_shape_is_invalid_parameter_naming_it(
    flat: dict[str, str], read: Callable[[Params, str], list[Any]]
) -> None:
    path = next(iter(flat)).split(".")[0]
    with pytest.raises(EmulatorError) as caught:
        read(Params(flat), path)
    assert (caught.value.code, caught.value.detail) == ("InvalidParameter", path)
