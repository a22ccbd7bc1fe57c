"""Fixtures of the Python tests, which run on every rank of an mpirun job
(python/tests/CMakeLists.txt runs them on 1, 2 and 3 ranks): every test makes
the same collective calls on every rank."""

import os
import shutil
import sys
import tempfile

import pytest
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(__file__))  # patterns.py


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Each rank's tmp_path under MESHCKPT_PY_TEST_DIR: pytest's default
    /tmp/pytest-of-<user> keeps only the newest three sessions' directories,
    so concurrent sessions (ranks, ctest jobs) could remove each other's."""
    base = os.environ.get("MESHCKPT_PY_TEST_DIR")
    if base and not config.option.basetemp:
        config.option.basetemp = os.path.join(base, "tmp_rank%d" % MPI.COMM_WORLD.rank)


@pytest.fixture(scope="session")
def comm():
    return MPI.COMM_WORLD


@pytest.fixture
def shared_dir(comm, request):
    """An empty directory all ranks see, one per test."""
    base = os.environ.get("MESHCKPT_PY_TEST_DIR")
    if base is None:
        base = comm.bcast(tempfile.mkdtemp(prefix="meshckpt_py_") if comm.rank == 0 else None)
    path = os.path.join(base, request.node.name)
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    comm.Barrier()
    return path
