# Saves a sharded tensor on 4 ranks and restores it on 2 (any counts work):
#   mpirun -n 4 python3 save_restore.py save /tmp/ckpt
#   mpirun -n 2 python3 save_restore.py restore /tmp/ckpt
import sys

import numpy as np
from mpi4py import MPI

import meshckpt

mode, prefix = sys.argv[1], sys.argv[2]
comm = MPI.COMM_WORLD
mesh = meshckpt.Mesh({"x": comm.size}, comm)        # one device per rank
layout = meshckpt.Layout(["x", "unsharded"], mesh)  # rows split over x
shape = (1024, 512)
full = np.arange(1024 * 512, dtype=np.float32).reshape(shape)  # to make and check parts
boxes = layout.local_boxes(shape)                   # (origin, shape) per local device
part = [tuple(slice(o, o + n) for o, n in zip(*box)) for box in boxes]

if mode == "save":
    arrays = [np.ascontiguousarray(full[p]) for p in part]
    tensor = meshckpt.Tensor("model/w", shape, layout, arrays)
    meshckpt.save(comm, prefix, [tensor], step=100, metadata={"run": "example"})
else:
    arrays = meshckpt.allocate(shape, layout, "float32")
    tensor = meshckpt.Tensor("model/w", shape, layout, arrays)
    meshckpt.restore(comm, prefix, [tensor])        # fills the arrays in place
    assert all(np.array_equal(a, full[p]) for a, p in zip(arrays, part))
print(f"rank {comm.rank}/{comm.size}: {mode}d rows {part[0][0].start}:{part[0][0].stop}")
