"""The tensors and values cross_check.cc saves and checks, in numpy.

Element i (row-major, global) of the tensor of dtype k (its DType number) has
byte b = (i*131 + b*17 + k*29 + 7) mod 256; bool is (i*7 + k) mod 3 == 0;
string is b"s<k>-<i>" followed, when i is even, by the bytes 00 ff c3 a9.
"""

import numpy as np

# meshckpt's DType numbers, in AllDTypes() order.
DTYPES = [("float16", 19), ("bfloat16", 14), ("float32", 1), ("float64", 2), ("int8", 6),
          ("int16", 5), ("int32", 3), ("int64", 9), ("uint8", 4), ("uint16", 17),
          ("uint32", 22), ("uint64", 23), ("bool", 10), ("complex64", 8),
          ("complex128", 18), ("string", 7)]
NUMBER = dict(DTYPES)


def specs():
    """(key, dtype name, shape, index) of every tensor, as cross_check.cc."""
    out = [("dtypes/" + name, name, (7, 6), j) for j, (name, _) in enumerate(DTYPES)]
    out.append(("scalar", "int64", (), len(out)))
    out.append(("empty", "float32", (0, 4), len(out)))
    return out


def numpy_dtype(name):
    return {"bfloat16": np.uint16, "string": object}.get(name, name)


def expected(name, shape):
    """The whole tensor; bfloat16 as its uint16 bit patterns."""
    k = NUMBER[name]
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    if name == "string":
        out = np.empty(n, dtype=object)
        for e in range(n):
            out[e] = b"s%d-%d" % (k, e) + (b"\x00\xff\xc3\xa9" if e % 2 == 0 else b"")
        return out.reshape(shape)
    if name == "bool":
        return ((i * 7 + k) % 3 == 0).reshape(shape)
    dt = np.dtype(numpy_dtype(name))
    b = np.arange(dt.itemsize, dtype=np.int64)
    raw = ((i[:, None] * 131 + b[None, :] * 17 + k * 29 + 7) & 0xFF).astype(np.uint8)
    return raw.reshape(-1).view(dt).reshape(shape)


def save_specs(shape, index):
    specs = ["unsharded"] * len(shape)
    if specs and index % 3 != 2:
        specs[index % 3] = "x"
    return specs


def restore_specs(shape, index):
    specs = ["unsharded"] * len(shape)
    if specs:
        specs[1 - index % 2] = "y"
    return specs


def part(full, origin, shape):
    """The box (origin, shape) of a global array, as a contiguous copy."""
    idx = tuple(slice(o, o + s) for o, s in zip(origin, shape))
    return np.ascontiguousarray(full[idx]) if idx else full.copy()


def same_bits(a, b):
    """True when two arrays have the same dtype, shape and bytes (objects: equal)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return all(x == y and type(x) is type(y) for x, y in zip(a.ravel(), b.ravel()))
    return a.tobytes() == b.tobytes()
