"""smartnet_gym: the SmartNet TSO-DSO coordination schemes as Gymnasium environments."""

__version__ = "0.1.0"

__all__ = ["__version__"]
