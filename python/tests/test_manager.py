"""meshckpt.CheckpointManager over numpy arrays: retention, restore in place
(also into replicated devices), async saves, and its errors."""

import os

import numpy as np
import pytest

import meshckpt
import patterns


def _tensors(comm, value, specs=("x", "unsharded")):
    mesh = meshckpt.Mesh({"x": 2 * comm.size}, comm)
    out = []
    for key, shape, dtype in (("model/dense/kernel", (8, 3), "float32"),
                              ("model/step_bias", (5, 2), "int64")):
        layout = meshckpt.Layout(list(specs), mesh)
        full = (np.arange(np.prod(shape)).reshape(shape) + value).astype(dtype)
        arrays = [patterns.part(full, o, s) for o, s in layout.local_boxes(list(shape))]
        out.append(meshckpt.Tensor(key, shape, layout, arrays))
    return out


def _values(tensors, value):
    for t in tensors:
        full = (np.arange(np.prod(t.shape)).reshape(t.shape) + value).astype(t.arrays[0].dtype)
        for a, (o, s) in zip(t.arrays, t.layout.local_boxes(list(t.shape))):
            a[...] = patterns.part(full, o, s)


def _check(tensors, value):
    for t in tensors:
        full = (np.arange(np.prod(t.shape)).reshape(t.shape) + value).astype(t.arrays[0].dtype)
        for a, (o, s) in zip(t.arrays, t.layout.local_boxes(list(t.shape))):
            assert patterns.same_bits(a, patterns.part(full, o, s)), t.key


def test_retention_and_restore(comm, shared_dir):
    tensors = _tensors(comm, 0)
    with meshckpt.CheckpointManager(comm, shared_dir, tensors, max_to_keep=2,
                                    keep_every_n_hours=1000) as m:
        assert m.restore_or_initialize() is None
        for step in (1, 2, 3):
            _values(tensors, step)
            path = m.save(step=step)
            assert path == os.path.join(m.directory, "ckpt-%d" % step)
        assert [os.path.basename(p) for p in m.checkpoints] == ["ckpt-2", "ckpt-3"]
        assert m.latest_checkpoint == path
    comm.Barrier()  # Rank 0 deletes what retention drops.
    assert not os.path.exists(os.path.join(shared_dir, "ckpt-1.index"))
    assert os.path.exists(path + ".index")
    with meshckpt.open(path) as r:
        assert r.step == 3
        assert "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE" in r
    # A new job, other layouts (replicated: each rank's two devices share a
    # shard), restores the newest in place.
    fresh = _tensors(comm, 0, specs=("unsharded", "unsharded"))
    _values(fresh, -100)
    with meshckpt.CheckpointManager(comm, shared_dir, fresh, max_to_keep=2) as m:
        assert m.restore_or_initialize() == path
    _check(fresh, 3)


def test_async_save_keeps_the_values_of_the_call(comm, shared_dir):
    tensors = _tensors(comm, 7)
    m = meshckpt.CheckpointManager(comm, shared_dir, tensors, max_to_keep=None,
                                   async_save=True)
    path = m.save(step=1)
    _values(tensors, 99)  # After save returns, changes do not reach the checkpoint.
    m.wait_until_finished()
    assert m.checkpoints == [path]
    m.close()
    with pytest.raises(meshckpt.Error):
        m.save()
    back = _tensors(comm, 0)
    with meshckpt.CheckpointManager(comm, shared_dir, back) as m2:
        assert m2.restore_or_initialize() == path
    _check(back, 7)


def test_manager_errors(comm, shared_dir):
    with pytest.raises(ValueError):
        meshckpt.CheckpointManager(comm, shared_dir, _tensors(comm, 0), max_to_keep=0)
    with pytest.raises(ValueError):
        meshckpt.CheckpointManager(comm, shared_dir, [])
    mesh = meshckpt.Mesh({"x": comm.size}, comm)
    s = meshckpt.Tensor("names", (comm.size,), meshckpt.Layout(["x"], mesh),
                        meshckpt.allocate((comm.size,), meshckpt.Layout(["x"], mesh), "string"))
    with pytest.raises(ValueError, match="string"):
        meshckpt.CheckpointManager(comm, shared_dir, [s])
    with meshckpt.CheckpointManager(comm, shared_dir, _tensors(comm, 0)) as m:
        with pytest.raises(ValueError):
            m.restore_or_initialize(match="most")
