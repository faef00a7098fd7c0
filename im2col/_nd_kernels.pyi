"""Type stub for the compiled extension ``im2col._nd_kernels`` (csrc/_nd_kernels.pyx).

Its entry points trust their arguments (im2col/_validation.py checks them first), so mypy is told
only that the module exists: every attribute is ``Any``.
"""

from typing import Any

def __getattr__(name: str) -> Any: ...
