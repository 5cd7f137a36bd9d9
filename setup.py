"""Build the Cython kernels in minigrad/_kernels/ with optimisation and OpenMP.

Every ``minigrad/_kernels/*.pyx`` becomes an extension module of the same name.
Set ``MINIGRAD_PORTABLE=1`` to build without ``-march=native`` (for wheels that
must run on other CPUs).
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

compile_args = ["-O3", "-fopenmp"]
if os.environ.get("MINIGRAD_PORTABLE", "0") != "1":
    compile_args.append("-march=native")

extensions = [
    Extension(
        "minigrad._kernels." + os.path.splitext(os.path.basename(path))[0],
        [path],
        # the C headers the kernels include: a change rebuilds them
        depends=sorted(glob.glob(os.path.join("minigrad", "_kernels", "*.h"))),
        extra_compile_args=compile_args,
        extra_link_args=["-fopenmp"],
    )
    for path in sorted(glob.glob(os.path.join("minigrad", "_kernels", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
