"""Reads, with meshckpt.open, the checkpoint cross_check.cc saved in C++
(path in MESHCKPT_CXX_CHECKPOINT): every dtype bit for bit, whole and in
boxes, its step and metadata, and verify(). Run by cross_language_test.sh,
outside mpirun: reading needs no MPI."""

import os

import numpy as np
import pytest

import meshckpt
import patterns

PREFIX = os.environ.get("MESHCKPT_CXX_CHECKPOINT", "")


@pytest.fixture(scope="module")
def reader():
    if not PREFIX:
        pytest.fail("set MESHCKPT_CXX_CHECKPOINT to a checkpoint of cross_check save")
    with meshckpt.open(PREFIX) as r:
        yield r


def test_contents(reader):
    assert reader.keys() == sorted(k for k, _, _, _ in patterns.specs())
    assert reader.step == 42
    assert reader.metadata == {"writer": "c++"}
    for key, name, shape, _ in patterns.specs():
        assert reader.dtype(key) == name and reader.shape(key) == shape
    assert reader.verify() == []


@pytest.mark.parametrize("key, name, shape", [(k, n, s) for k, n, s, _ in patterns.specs()])
def test_every_dtype_bit_exact(reader, key, name, shape):
    want = patterns.expected(name, shape)
    got = reader.read(key, raw=True)
    assert patterns.same_bits(got, want)
    if name == "bfloat16":
        widened = reader.read(key)
        assert widened.dtype == np.float32
        assert widened.view(np.uint32).tobytes() == (want.astype(np.uint32) << 16).tobytes()
    if len(shape) == 2 and shape[0] > 0:
        box = reader.read(key, box=(slice(1, 6), slice(2, 5)), raw=True)
        assert patterns.same_bits(box, patterns.part(want, (1, 2), (5, 3)))
