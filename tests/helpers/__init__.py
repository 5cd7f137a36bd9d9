"""Code the test modules share; no test module imports another.

- ``helpers.reference``: plain numpy references (convolution, every pooling kind, batch norm),
  forward and vector-Jacobian product.
- ``helpers.training``: the tiny conv net training run (model, optimiser, schedule, batches).
- ``helpers.dataset_files``: MNIST and CIFAR-10 files generated in the official formats, and
  the real datasets under MINIGRAD_DATA.
- ``helpers.fuzz_bad_input``: the bad-input fuzzer (also a command-line script).
- ``helpers.distributed``: the small float64 nets the MPI tests train under ``mpiexec`` (with
  ``helpers/mpi_worker.py``, the program each rank runs) and in one process, and the launcher.

tests/conftest.py puts the tests folder on ``sys.path``, so ``import helpers`` works in every
pytest import mode (prepend, append, importlib).
"""
