"""Knowledge-distillation methods, one module each, registered by name.

``create_distiller(name, teacher, student, **kwargs)`` builds one; ``list_methods()`` lists them.
The trainer (:mod:`bcpd_sim.vision.distill.trainer`) runs teacher and student and calls the
distiller with their outputs.
"""

from . import at, crd, dkd, fitnet, kd, pkt, rkd, sp  # noqa: F401  (registration)
from .base import Distiller, create_distiller, list_methods, method_class

__all__ = ["Distiller", "create_distiller", "list_methods", "method_class"]
