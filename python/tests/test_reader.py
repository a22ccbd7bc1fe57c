"""meshckpt.open: keys, dtypes, shapes, layouts, metadata, reads (whole and
boxes) bit for bit for every dtype, iteration, verify, and the errors."""

import os
import shutil
import threading

import numpy as np
import pytest

import meshckpt
import patterns


@pytest.fixture
def saved(comm, shared_dir):
    """A checkpoint of every dtype saved from Python on all ranks."""
    prefix = os.path.join(shared_dir, "ckpt")
    mesh = meshckpt.Mesh({"x": 2 * comm.size}, comm)
    tensors = []
    for key, name, shape, index in patterns.specs():
        layout = meshckpt.Layout(patterns.save_specs(shape, index), mesh)
        full = patterns.expected(name, shape)
        arrays = [patterns.part(full, o, s) for o, s in layout.local_boxes(list(shape))]
        tensors.append(meshckpt.Tensor(key, shape, layout, arrays, dtype=name))
    meshckpt.save(comm, prefix, tensors, step=5, metadata={"run": "test", "lr": "0.1"})
    return prefix


def test_describes_the_checkpoint(saved, comm):
    with meshckpt.open(saved) as r:
        specs = patterns.specs()
        assert r.keys() == sorted(k for k, _, _, _ in specs)
        assert len(r) == len(specs)
        for key, name, shape, index in specs:
            assert key in r
            assert r.dtype(key) == name
            assert r.shape(key) == shape
            layout = meshckpt.Layout.from_string(r.layout(key))
            assert layout.sharding_specs == patterns.save_specs(shape, index)
        assert r.dtypes()["dtypes/bfloat16"] == "bfloat16"
        assert r.shapes()["scalar"] == ()
        assert meshckpt.Mesh.from_string(r.mesh).num_devices == 2 * comm.size
        assert r.step == 5
        assert r.metadata == {"run": "test", "lr": "0.1"}
        assert [v.key for v in r] == r.keys()
        assert "nope" not in r


@pytest.mark.parametrize("name", [n for n, _ in patterns.DTYPES])
def test_reads_every_dtype_bit_exactly(saved, name):
    want = patterns.expected(name, (7, 6))
    with meshckpt.open(saved) as r:
        got = r.read("dtypes/" + name)
        if name == "bfloat16":
            # float32 values, exactly the bfloat16 bits widened.
            assert got.dtype == np.float32
            assert got.tobytes() == (want.astype(np.uint32) << 16).tobytes()
            assert patterns.same_bits(r.read("dtypes/" + name, raw=True), want)
        else:
            assert patterns.same_bits(got, want)
            assert got.flags.c_contiguous and got.flags.writeable
        box = r.read("dtypes/" + name, box=(slice(2, 5), slice(1, 6)), raw=True)
        assert patterns.same_bits(box, patterns.part(want, (2, 1), (3, 5)))


def test_boxes_scalars_and_empty(saved):
    want = patterns.expected("int32", (7, 6))
    with meshckpt.open(saved) as r:
        key = "dtypes/int32"
        assert patterns.same_bits(r.read(key, box=((1, 2), (4, 3))),
                                  patterns.part(want, (1, 2), (4, 3)))
        assert patterns.same_bits(r.read(key, box=3), want[3:4])
        assert patterns.same_bits(r.read(key, box=(-1, slice(None, 2))), want[6:7, :2])
        assert r.read(key, box=(slice(2, 2),)).shape == (0, 6)
        assert patterns.same_bits(r.read("scalar"), patterns.expected("int64", ()))
        assert r.read("empty").shape == (0, 4)
        assert r.read_value("scalar") == int(patterns.expected("int64", ()))
        keys = [k for k, _ in r.items()]
        assert keys == r.keys()


def test_verify_passes_on_an_intact_checkpoint(saved):
    with meshckpt.open(saved) as r:
        assert r.verify() == []


def test_missing_checkpoint_and_key(shared_dir):
    with pytest.raises(FileNotFoundError) as e:
        meshckpt.open(os.path.join(shared_dir, "nothing"))
    assert isinstance(e.value, meshckpt.Error) and e.value.code == "NOT_FOUND"
    assert "nothing" in str(e.value)


def test_missing_key_bad_box_closed(saved):
    r = meshckpt.open(saved)
    with pytest.raises(KeyError) as e:
        r.read("no/such/key")
    assert isinstance(e.value, meshckpt.Error) and "no/such/key" in str(e.value)
    with pytest.raises(KeyError):
        r.info("no/such/key")
    with pytest.raises(ValueError):
        r.read("dtypes/int32", box=((0, 0), (8, 6)))  # Outside the tensor.
    with pytest.raises(ValueError):
        r.read("dtypes/int32", box=(slice(0, 6, 2),))
    with pytest.raises(ValueError):
        r.read("dtypes/int32", box=(9,))
    with pytest.raises(ValueError):
        r.read("dtypes/int32", box=(0, 0, 0))
    r.close()
    with pytest.raises(meshckpt.Error) as e:
        r.keys()
    assert e.value.code == "FAILED_PRECONDITION"


def _copy(prefix, tmp_path):
    out = str(tmp_path / "copy")
    for ext in (".index", ".h5"):
        shutil.copyfile(prefix + ext, out + ext)
    return out


@pytest.fixture
def big(comm, shared_dir):
    """One float64 tensor filling most of its data file."""
    prefix = os.path.join(shared_dir, "big")
    mesh = meshckpt.Mesh({"x": comm.size}, comm)
    layout = meshckpt.Layout(["x", "unsharded"], mesh)
    full = np.arange(256 * 64, dtype=np.float64).reshape(256, 64)
    arrays = [patterns.part(full, o, s) for o, s in layout.local_boxes([256, 64])]
    meshckpt.save(comm, prefix, [meshckpt.Tensor("w", (256, 64), layout, arrays)])
    return prefix


def test_flipped_byte_is_data_loss(big, tmp_path):
    path = _copy(big, tmp_path)
    size = os.path.getsize(path + ".h5")
    with open(path + ".h5", "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x01]))
    with meshckpt.open(path) as r:
        with pytest.raises(meshckpt.DataLossError) as e:
            r.read("w")
        assert e.value.code == "DATA_LOSS" and "w" in str(e.value)
        problems = r.verify(raise_on_error=False)
        assert problems
        with pytest.raises(meshckpt.DataLossError):
            r.verify()
    # Unverified reads return the damaged bytes instead.
    with meshckpt.open(path, verify_checksums=False) as r:
        assert r.read("w").shape == (256, 64)


def test_truncated_or_garbled_files_are_data_loss(big, tmp_path):
    path = _copy(big, tmp_path)
    with open(path + ".h5", "r+b") as f:
        f.truncate(os.path.getsize(path + ".h5") - 100)
    with pytest.raises(meshckpt.DataLossError):
        meshckpt.open(path)
    path = _copy(big, tmp_path)
    with open(path + ".index", "r+b") as f:
        f.seek(10)
        f.write(b"\xff" * 16)
    with pytest.raises(meshckpt.DataLossError):
        meshckpt.open(path)
    path = _copy(big, tmp_path)
    os.remove(path + ".h5")
    with pytest.raises(meshckpt.DataLossError):
        meshckpt.open(path)


def test_threads_share_a_reader_and_close_it(saved):
    """Reads from several threads (the GIL is released while reading) are
    serialized inside; closing while others read never crashes: each read
    either completes or finds the reader closed."""
    r = meshckpt.open(saved)
    want = patterns.expected("float64", (7, 6))
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(patterns.same_bits(r.read("dtypes/float64"), want))
        except meshckpt.Error as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(results) and not errors
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    r.close()
    for t in threads:
        t.join()
    assert all(results)
    assert all(e.code == "FAILED_PRECONDITION" for e in errors)
