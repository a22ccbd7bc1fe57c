"""meshckpt.save / restore over mpi4py: resharding across meshes and
layouts, strings, and bad input raising the same clear exception on every
rank (never a crash or a hang)."""

import os
import threading
import time

import numpy as np
import pytest
from mpi4py import MPI

import meshckpt
import patterns


def _tensor(key, full, layout, dtype=None):
    arrays = [patterns.part(full, o, s) for o, s in layout.local_boxes(list(full.shape))]
    return meshckpt.Tensor(key, full.shape, layout, arrays, dtype=dtype)


def _zeros(key, shape, layout, dtype):
    return meshckpt.Tensor(key, shape, layout, meshckpt.allocate(shape, layout, dtype),
                           dtype=dtype)


def _check(tensor, full):
    boxes = tensor.layout.local_boxes(list(full.shape))
    for a, (o, s) in zip(tensor.arrays, boxes):
        assert patterns.same_bits(a, patterns.part(full, o, s)), tensor.key


def test_mesh_and_layout_from_strings(comm):
    mesh = meshckpt.Mesh({"batch": 2, "model": comm.size}, comm)
    assert mesh.rank == comm.rank and mesh.num_ranks == comm.size
    assert mesh.num_devices == 2 * comm.size
    assert len(mesh.local_device_ids) == 2
    again = meshckpt.Mesh.from_string(str(mesh))
    assert again == mesh and again.dims == [("batch", 2), ("model", comm.size)]
    layout = meshckpt.Layout(["model", "unsharded"], mesh)
    assert meshckpt.Layout.from_string(layout.to_string()) == layout
    assert layout.sharding_specs == ["model", "unsharded"]
    with pytest.raises(ValueError):
        meshckpt.Layout(["nodim", "unsharded"], mesh)
    with pytest.raises(ValueError):
        meshckpt.Layout(["model", "model"], mesh)
    with pytest.raises(ValueError):
        meshckpt.Layout.from_string("sharding_specs:x, mesh:|garbage")
    with pytest.raises(ValueError):
        meshckpt.Mesh.from_string("not a mesh")
    with pytest.raises(ValueError):
        meshckpt.Mesh({"x": 3}, rank=0, num_ranks=2)  # 3 devices over 2 ranks.


def test_save_and_restore_across_layouts(comm, shared_dir):
    prefix = os.path.join(shared_dir, "ckpt")
    src = meshckpt.Mesh({"x": 2, "y": comm.size}, comm)
    w = np.arange(10 * 9, dtype=np.float32).reshape(10, 9) * 0.5
    b = np.arange(5, dtype=np.int64) - 2
    s = np.array([b"a", b"", b"\x00\xff", "\u00e9".encode(), b"zz" * 40], dtype=object)
    meshckpt.save(comm, prefix, [
        _tensor("model/w", w, meshckpt.Layout(["y", "x"], src)),
        _tensor("model/b", b, meshckpt.Layout(["unsharded"], src)),
        _tensor("vocab", s, meshckpt.Layout(["x"], src)),
    ], step=3)
    # Restored on another mesh and other layouts, including more devices
    # per rank and a layout given as a string.
    dst = meshckpt.Mesh({"z": 3 * comm.size}, comm)
    tensors = [
        _zeros("model/w", w.shape, meshckpt.Layout(["unsharded", "z"], dst), "float32"),
        _zeros("model/b", b.shape, str(meshckpt.Layout(["z"], dst)), "int64"),
        _zeros("vocab", s.shape, meshckpt.Layout(["unsharded"], dst), "string"),
    ]
    meshckpt.restore(comm, prefix, tensors)
    tensors[1].layout = meshckpt.Layout.from_string(tensors[1].layout)
    _check(tensors[0], w)
    _check(tensors[1], b)
    _check(tensors[2], s)
    with meshckpt.open(prefix) as r:
        assert r.step == 3
        assert patterns.same_bits(r.read("vocab"), s)


def test_tuples_and_a_process_alone(comm, tmp_path):
    # comm=None: this process alone, no MPI; each rank has its own directory.
    mesh = meshckpt.Mesh({"x": 2})
    layout = meshckpt.Layout(["x"], mesh)
    full = np.arange(6, dtype=np.uint16)
    arrays = [patterns.part(full, o, s) for o, s in layout.local_boxes([6])]
    prefix = str(tmp_path / "alone")
    meshckpt.save(None, prefix, [("v", (6,), layout, arrays, "bfloat16")])
    back = meshckpt.allocate((6,), layout, "bfloat16")
    meshckpt.restore(None, prefix, [("v", [6], layout, back, "bfloat16")])
    assert all(patterns.same_bits(a, b) for a, b in zip(arrays, back))
    with meshckpt.open(prefix) as r:
        assert r.dtype("v") == "bfloat16"


@pytest.fixture
def saved(comm, shared_dir):
    prefix = os.path.join(shared_dir, "ckpt")
    mesh = meshckpt.Mesh({"x": comm.size}, comm)
    full = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    meshckpt.save(comm, prefix, [_tensor("w", full, meshckpt.Layout(["x", "unsharded"], mesh))])
    return prefix, mesh


def _one(mesh, arrays=None, dtype=None, key="w", shape=(8, 6), specs=("unsharded", "x")):
    layout = meshckpt.Layout(list(specs), mesh)
    if arrays is None:
        arrays = meshckpt.allocate(shape, layout, "float32")
    return [meshckpt.Tensor(key, shape, layout, arrays, dtype=dtype)]


def _boxes(mesh):
    return meshckpt.Layout(["unsharded", "x"], mesh).local_boxes([8, 6])


@pytest.mark.parametrize("bad, message", [
    (lambda m: [np.zeros(s, np.float64) for _, s in _boxes(m)], "dtype float64"),
    (lambda m: [np.zeros((s[0], s[1] + 1), np.float32) for _, s in _boxes(m)], "shape"),
    (lambda m: [np.zeros((s[1], s[0]), np.float32).T for _, s in _boxes(m)], "C-contiguous"),
    (lambda m: [np.zeros(s, np.float32)[:, :] for _, s in _boxes(m)] * 2, "arrays given"),
    (lambda m: [[0.0] * 6 for _ in _boxes(m)], "numpy array"),
    (lambda m: np.zeros((8, 6), np.float32), "one numpy array per local device"),
])
def test_bad_arrays_are_value_errors_on_every_rank(comm, saved, bad, message):
    prefix, mesh = saved
    with pytest.raises(ValueError) as e:
        meshckpt.restore(comm, prefix, _one(mesh, arrays=bad(mesh), dtype="float32"))
    assert message in str(e.value) and "tensor 'w'" in str(e.value)
    assert e.value.code == "INVALID_ARGUMENT"


def test_read_only_array(comm, saved):
    prefix, mesh = saved
    arrays = meshckpt.allocate((8, 6), meshckpt.Layout(["unsharded", "x"], mesh), "float32")
    for a in arrays:
        a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        meshckpt.restore(comm, prefix, _one(mesh, arrays=arrays))


def test_bad_input_on_one_rank_fails_every_rank(comm, saved):
    prefix, mesh = saved
    arrays = meshckpt.allocate((8, 6), meshckpt.Layout(["unsharded", "x"], mesh), "float32")
    if comm.rank == comm.size - 1:
        arrays[0] = arrays[0].astype(np.float64)
    with pytest.raises(ValueError, match="rank %d" % (comm.size - 1)):
        meshckpt.restore(comm, prefix, _one(mesh, arrays=arrays, dtype="float32"))
    # And every rank can go on together.
    good = _one(mesh)
    meshckpt.restore(comm, prefix, good)
    _check(good[0], np.arange(48, dtype=np.float32).reshape(8, 6))


def test_bad_layouts_and_tensors(comm, saved):
    prefix, mesh = saved
    t = _one(mesh)[0]
    t.layout = "sharding_specs:nope, mesh:|x=2|0,1|0|*CPU"
    with pytest.raises(ValueError):
        meshckpt.restore(comm, prefix, [t])
    other = meshckpt.Mesh({"x": comm.size + 1}, rank=0, num_ranks=comm.size + 1)
    t = _one(mesh)[0]
    t.layout = meshckpt.Layout(["unsharded", "x"], other)
    with pytest.raises(ValueError, match="mesh"):
        meshckpt.restore(comm, prefix, [t])
    with pytest.raises(ValueError):
        meshckpt.restore(comm, prefix, [("w", (8, 6))])
    with pytest.raises(ValueError):
        meshckpt.restore(comm, prefix, "w")
    with pytest.raises(ValueError):
        meshckpt.save(comm, prefix + "x", _one(mesh, dtype="float128"))
    with pytest.raises(ValueError):
        meshckpt.save(comm, prefix + "x", _one(mesh), metadata={"a": 1})
    with pytest.raises(ValueError):
        meshckpt.save(comm, prefix + "x", _one(mesh, shape=(8, -6)))
    with pytest.raises(ValueError, match="comm"):
        meshckpt.save(object(), prefix + "x", _one(mesh))


def test_missing_things_and_mismatches(comm, saved, shared_dir):
    prefix, mesh = saved
    with pytest.raises(FileNotFoundError):
        meshckpt.restore(comm, os.path.join(shared_dir, "none"), _one(mesh))
    with pytest.raises(KeyError):
        meshckpt.restore(comm, prefix, _one(mesh, key="missing"))
    ints = meshckpt.allocate((8, 6), meshckpt.Layout(["unsharded", "x"], mesh), "int32")
    with pytest.raises(meshckpt.Error) as e:
        meshckpt.restore(comm, prefix, _one(mesh, arrays=ints))
    # The arrays say int32, the checkpoint float32: the engine's check.
    assert e.value.code == "FAILED_PRECONDITION" and "float32" in str(e.value)
    assert not isinstance(e.value, ValueError)
    with pytest.raises(meshckpt.Error):
        meshckpt.restore(comm, prefix, _one(mesh, shape=(8, 7)))


def test_corrupt_checkpoint_is_data_loss_on_every_rank(comm, saved):
    prefix, mesh = saved
    if comm.rank == 0:
        size = os.path.getsize(prefix + ".h5")
        with open(prefix + ".h5", "r+b") as f:
            f.truncate(size - 64)
    comm.Barrier()
    with pytest.raises(meshckpt.DataLossError):
        meshckpt.restore(comm, prefix, _one(mesh))


@pytest.mark.skipif(MPI.COMM_WORLD.size < 2, reason="needs a second rank")
def test_the_gil_is_released_during_io(comm, shared_dir):
    """Rank 0 saves on a thread, and rank 1 joins the save only when rank 0's
    main thread tells it to: that needs the GIL while rank 0's save waits."""
    side = comm.Dup()
    mesh = meshckpt.Mesh({"x": comm.size}, comm)
    prefix = os.path.join(shared_dir, "gil")
    tensors = [_tensor("v", np.arange(comm.size * 4.0), meshckpt.Layout(["x"], mesh))]
    errors = []

    def save():
        try:
            meshckpt.save(comm, prefix, tensors)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    if comm.rank == 0:
        t = threading.Thread(target=save)
        t.start()
        time.sleep(0.3)  # Let the thread block in the save, holding nothing.
        side.send("go", dest=1)
        t.join()
    else:
        if comm.rank == 1:
            side.recv(source=0)
        save()
    assert not errors
    side.Free()
