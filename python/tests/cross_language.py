"""Python's half of the cross-language test (cross_language_test.sh):

  mpirun -n N python3 cross_language.py save PREFIX     # as cross_check save
  mpirun -n M python3 cross_language.py restore PREFIX  # as cross_check restore

The same tensors, meshes and layouts as cross_check.cc (patterns.py), so a
checkpoint either side writes is restored by the other on another rank
count and compared bit for bit. Exits 1 on any difference.
"""

import sys

from mpi4py import MPI

import meshckpt
import patterns


def main(mode, prefix):
    comm = MPI.COMM_WORLD
    save = mode == "save"
    mesh = (meshckpt.Mesh({"x": 2 * comm.size}, comm) if save
            else meshckpt.Mesh({"y": comm.size}, comm))
    tensors, wanted = [], []
    for key, name, shape, index in patterns.specs():
        specs = (patterns.save_specs if save else patterns.restore_specs)(shape, index)
        layout = meshckpt.Layout(specs, mesh)
        full = patterns.expected(name, shape)
        parts = [patterns.part(full, o, s) for o, s in layout.local_boxes(list(shape))]
        wanted.append(parts)
        arrays = parts if save else meshckpt.allocate(shape, layout, name)
        tensors.append(meshckpt.Tensor(key, shape, layout, arrays, dtype=name))
    if save:
        meshckpt.save(comm, prefix, tensors, step=7, metadata={"writer": "python"})
        bad = []
    else:
        meshckpt.restore(comm, prefix, tensors)
        bad = [t.key for t, want in zip(tensors, wanted)
               if not all(patterns.same_bits(a, w) for a, w in zip(t.arrays, want))]
    bad = comm.allgather(bad)
    failed = [k for b in bad for k in b]
    if comm.rank == 0:
        print("cross_language %s %s on %d ranks: %s"
              % (mode, prefix, comm.size, "differ: %s" % failed if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
