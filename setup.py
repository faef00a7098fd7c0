"""Build the Cython kernels. Metadata lives in pyproject.toml.

Environment switches:
  IM2COL_DEBUG=1       bounds checks and wraparound checks back on, -O0 -g (slow; for tests).
  IM2COL_NO_OPENMP=1   build serially even when the compiler supports OpenMP.
  IM2COL_SANITIZE=1    add -fsanitize=address,undefined (run with the ASan runtime preloaded).
"""

import os
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("IM2COL_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("IM2COL_SANITIZE", "") not in ("", "0")
NO_OPENMP = os.environ.get("IM2COL_NO_OPENMP", "") not in ("", "0")


def _compiler_has_openmp(compiler) -> bool:
    """Compile and link a tiny OpenMP program; True when both work."""
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(src)
        try:
            objs = compiler.compile([path], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        use_openmp = not NO_OPENMP and _compiler_has_openmp(self.compiler)
        for ext in self.extensions:
            if use_openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            if DEBUG:
                ext.extra_compile_args += ["-O0", "-g"]
            else:
                ext.extra_compile_args += ["-O3"]
            if SANITIZE:
                flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
                ext.extra_compile_args += flags
                ext.extra_link_args += flags
        print(f"im2col: building with OpenMP={'on' if use_openmp else 'off'}, debug={DEBUG}")
        super().build_extensions()


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# The Cython kernels, one module split into per-concern files it includes (csrc/kernels/*.pxi,
# tracked by cythonize), and the C headers they include: a change to one alone must rebuild too.
_ENGINE_C = ("ukernel_ref", "ukernel_avx2", "ukernel_avx512", "conv", "depthwise", "depthwise_backward")
extensions = [
    Extension(
        "im2col._kernels",
        ["csrc/_kernels.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/_omp_compat.h", "csrc/_stream_copy.h", "csrc/_transpose.h"],
    ),
    Extension("im2col._nd_kernels", ["csrc/_nd_kernels.pyx"]),
    # the convolution engine: micro-kernels per instruction set (function target attributes, so the
    # build stays baseline), packing and drivers in C, a thin Cython wrapper
    Extension(
        "im2col._engine_kernels",
        ["csrc/_engine.pyx"] + [f"csrc/engine/{f}.c" for f in _ENGINE_C],
        include_dirs=["csrc"],
        depends=["csrc/_omp_compat.h"]
        + [f"csrc/engine/{h}.h" for h in ("ukernel", "conv", "depthwise", "depthwise_common")],
    ),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
