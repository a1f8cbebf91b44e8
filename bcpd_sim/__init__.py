"""bcpd-sim: does an MSE-trained teacher bring knowledge distillation closer to the BCPD?"""

__version__ = "0.1.0"

__all__ = ["__version__"]
