"""meshckpt: mesh-aware distributed checkpoints, from Python.

Read side (one process, no MPI)::

    import meshckpt
    with meshckpt.open("/ckpt/run/ckpt-3") as r:
        for v in r:                      # VariableInfo: key, dtype, shape, layout
            print(v.key, v.dtype, v.shape)
        w = r.read("model/w")            # numpy, checked against the checksums
        row = r.read("model/w", box=(slice(3, 4), slice(None)))
        r.verify()                       # raises DataLossError on damage

Collective side (mpi4py)::

    from mpi4py import MPI
    mesh = meshckpt.Mesh({"x": 4}, MPI.COMM_WORLD)
    layout = meshckpt.Layout(["x", "unsharded"], mesh)
    arrays = meshckpt.allocate((1024, 512), layout, "float32")   # one per device
    meshckpt.save(MPI.COMM_WORLD, "/ckpt/w", [meshckpt.Tensor("w", (1024, 512), layout, arrays)])
    meshckpt.restore(MPI.COMM_WORLD, "/ckpt/w", [...])           # fills arrays in place

Errors: meshckpt.Error (with .code) and its subclasses FileNotFoundError /
KeyError / ValueError / DataLossError kin; see meshckpt._errors.
"""

from ._errors import (DataLossError, Error, InvalidArgumentError, KeyNotFoundError,
                      NotFoundError)
from ._api import (CheckpointManager, Layout, Mesh, Reader, Tensor, VariableInfo, allocate,
                   open, restore, save)
from ._meshckpt import library_version

__version__ = library_version.split()[-1]

__all__ = ["CheckpointManager", "DataLossError", "Error", "InvalidArgumentError",
           "KeyNotFoundError", "Layout", "Mesh", "NotFoundError", "Reader", "Tensor",
           "VariableInfo", "allocate", "library_version", "open", "restore", "save"]
