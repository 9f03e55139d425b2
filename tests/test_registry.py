import pytest

from edgekit.errors import EdgekitError
from edgekit.registry import Registry


def test_lookup_alias_and_suggestions():
    reg = Registry("widget")
    reg.register("alpha_one")(object())
    reg.register("beta")(object())
    reg.alias("alpha", "alpha_one")
    assert reg.resolve("alpha") == "alpha_one"
    assert reg.names("a*") == ["alpha_one"]
    with pytest.raises(EdgekitError, match="did you mean alpha_one"):
        reg.get("alpha_onee")
    with pytest.raises(ValueError):
        reg.register("beta")(object())
