"""edgekit: compress a CNN image classifier for an edge device, and measure every step."""

__version__ = "0.1.0"

from edgekit.zoo import create_model, list_models

__all__ = ["__version__", "create_model", "list_models"]
