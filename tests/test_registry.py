"""The one registry helper every table of methods, parts and metrics uses."""

import pytest

from forgetkit.errors import UnknownNameError, UserError
from forgetkit.registry import Registry


def test_registry_keeps_registration_order_and_decorates():
    table: Registry[int] = Registry("thing")
    table.register("b", 2)

    @table.register("a")
    def _a():
        return 1

    assert table.names() == ["b", "a"]
    assert table.get("a") is _a and table["b"] == 2
    assert "a" in table and "c" not in table and len(table) == 2


def test_registry_refuses_a_name_twice():
    table: Registry[int] = Registry("thing")
    table.register("x", 1)
    with pytest.raises(ValueError, match="registered twice"):
        table.register("x", 2)


def test_unknown_name_is_a_user_error_listing_the_known_ones():
    table: Registry[int] = Registry("repair method")
    table.register("dg-hard", 1)
    table.register("wise-ft", 2)
    with pytest.raises(UnknownNameError) as err:
        table.get("dg_hard")
    assert isinstance(err.value, UserError)
    assert str(err.value) == "unknown repair method 'dg_hard'; choose one of dg-hard, wise-ft"
