"""The process settings minigrad applies when it is imported: all of them, in one place.

=======================  =============================================  ==========================
setting                  why                                            opt out
=======================  =============================================  ==========================
OpenBLAS worker spin     numpy's BLAS threads spin about 0.1 s after    MINIGRAD_BLAS_TIMEOUT=0,
``OPENBLAS_THREAD_       each GEMM and steal the cores the next OpenMP  or set the variable
TIMEOUT=16``             kernel needs; 2^16 cycles bridges back-to-     yourself
                         back GEMMs
OpenMP worker spin       libgomp's workers spin ~300,000 rounds after   MINIGRAD_OMP_SPIN=0, or
``OMP_WAIT_POLICY=       a loop (stealing BLAS's cores); sleeping at    set either variable
ACTIVE``,                once costs a futex wake-up per op; 30,000      yourself
``GOMP_SPINCOUNT=        rounds bridge the Python between two ops and
30000``                  most gaps of an autograd step
Heap reuse (glibc        every op returns fresh arrays; glibc would     MINIGRAD_MALLOC_TUNING=0
``mallopt``)             ``mmap`` large ones and re-fault their pages
                         each step; serve every buffer from the heap
                         (no ``mmap``) and keep the freed heap top
=======================  =============================================  ==========================

The measured effect of each is in ``docs/runtime.md`` (benchmark cases ``fcn_mnist_step``,
``inception_cifar_step``, ``gap``, ``conv3x3_s1``).

The two libraries read their variables once, when they load, so this module must be imported
before numpy (for OpenBLAS) and before the kernels (for libgomp): ``minigrad/__init__.py``
imports it first. The variables are put into ``os.environ`` only while the libraries load and
then removed again, so child processes start with the user's own environment;
``environment()`` gives the settings for a child that should run the same way. ``applied``
records what took effect (a library that another import loaded first ignores them). The heap
settings are process-wide and also serve other libraries' large buffers (numpy's, PyTorch's).
"""
import ctypes
import os
import sys

BLAS_SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "16"}
OMP_SETTINGS = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "30000"}
#: glibc: up to this much free memory at the heap's top is kept instead of returned to the OS.
TRIM_BYTES = 1 << 30
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _opted_in(switch, settings):
    """``settings`` unless ``switch``=0 or the user set any of the variables themselves."""
    if os.environ.get(switch, "1") == "0" or any(name in os.environ for name in settings):
        return {}
    return dict(settings)


def _libgomp_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


def tune_heap():
    """Apply the heap settings (glibc only; not with MINIGRAD_MALLOC_TUNING=0); returns whether
    they are in effect. Called at import; calling it again changes nothing."""
    global heap_tuned
    if heap_tuned or os.environ.get("MINIGRAD_MALLOC_TUNING", "1") == "0":
        return heap_tuned
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # No mmap at all rather than a higher mmap threshold: glibc caps that at 32 MiB, and a
    # batch's activations are larger.
    heap_tuned = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) and mallopt(_M_MMAP_MAX, 0))
    return heap_tuned


#: OpenBLAS's entry point for its thread count, by build: numpy's own wheels (64-bit integers,
#: prefixed), then plain OpenBLAS builds.
_BLAS_SET_THREADS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")


def set_blas_threads(n):
    """Run numpy's OpenBLAS on ``n`` threads (its default is one per core). Several processes
    on one machine (``mpiexec``) each want their share of the cores, for BLAS as for the
    kernels: two processes with two BLAS threads each on two cores made the inception example
    train a third slower. Returns whether an OpenBLAS was found and set.

    Example::

        minigrad.runtime.set_blas_threads(1)
    """
    for library in openblas_libraries():
        for name in _BLAS_SET_THREADS:
            if hasattr(library, name):
                getattr(library, name)(int(n))
                return True
    return False


def openblas_libraries():
    """The OpenBLAS libraries loaded in this process (numpy's), as ``ctypes.CDLL`` handles:
    found by name in ``/proc/self/maps``; none where that cannot be read."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def cpu_info(field):
    """The first value of ``field`` ("vendor_id", "model name", ...) in Linux's
    /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def environment():
    """The environment variables minigrad applied in this process, for a child process that
    should run with the same settings: ``subprocess.run(..., env={**os.environ,
    **minigrad.runtime.environment()})``."""
    return dict(applied)


#: Whether the heap settings are in effect.
heap_tuned = False

_blas = _opted_in("MINIGRAD_BLAS_TIMEOUT", BLAS_SETTINGS) if "numpy" not in sys.modules else {}
_omp = _opted_in("MINIGRAD_OMP_SPIN", OMP_SETTINGS) if not _libgomp_loaded() else {}
os.environ.update({**_blas, **_omp})
try:
    import numpy  # noqa: E402,F401  (loads OpenBLAS, which reads its variable now)
    from ._kernels import openmp  # noqa: E402,F401  (loads libgomp, likewise)
finally:
    for _name in {**_blas, **_omp}:
        del os.environ[_name]

#: The environment settings that took effect in this process (name → value).
applied = {**_blas, **_omp}
tune_heap()
