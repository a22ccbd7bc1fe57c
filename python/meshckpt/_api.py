"""The Python face of meshckpt: reading any checkpoint, and collective
save / restore / CheckpointManager over mpi4py. See ``help(meshckpt)``."""

from . import _meshckpt
from ._meshckpt import Layout, Mesh, VariableInfo


class Tensor:
    """One tensor of a save or restore, as every rank gives it.

    key: the checkpoint key. shape: the global shape. layout: a Layout (or its
    string) on a mesh of the communicator's ranks. arrays: one numpy array per
    local device of the layout's mesh (mesh.local_device_ids order), each of the
    shape of that device's part (``layout.local_boxes(shape)``), C-contiguous,
    of the tensor's dtype. dtype: optional; default the arrays' dtype. bfloat16
    tensors take ``dtype="bfloat16"`` and uint16 arrays holding the bit
    patterns; string tensors take object arrays of bytes (or str, saved as
    UTF-8).
    """

    __slots__ = ("key", "shape", "layout", "arrays", "dtype")

    def __init__(self, key, shape, layout, arrays, dtype=None):
        self.key = key
        self.shape = tuple(shape)
        self.layout = layout
        # A list stays a list (restore fills its arrays); anything else is
        # kept as given for save/restore to reject with a clear message.
        self.arrays = list(arrays) if isinstance(arrays, tuple) else arrays
        self.dtype = dtype

    def __repr__(self):
        return "Tensor(%r, shape=%r, %d arrays)" % (self.key, self.shape, len(self.arrays))


def allocate(shape, layout, dtype):
    """Zeroed arrays for this rank's devices: the ``arrays`` of a Tensor.

    layout: a Layout or its string. dtype: a numpy dtype or a meshckpt dtype
    name ("bfloat16" gives uint16 arrays, "string" object arrays of b"").
    """
    import numpy as np

    if isinstance(layout, str):
        layout = Layout.from_string(layout)

    if dtype == "bfloat16":
        dtype = np.uint16
    elif dtype == "string":
        dtype = object
    out = []
    for _, box in layout.local_boxes(list(shape)):
        a = np.zeros(box, dtype=dtype)
        if a.dtype == object:
            a.fill(b"")
        out.append(a)
    return out


def save(comm, prefix, tensors, step=0, metadata=None):
    """Collective: saves ``tensors`` to the checkpoint ``prefix``.

    comm: an mpi4py communicator (None: this process alone). Every rank passes
    the same keys, shapes and layouts with its own devices' arrays. Each
    distinct shard is written once; the checkpoint exists (``prefix.index``)
    only once every rank's part is durable. ``step`` and ``metadata`` (str to
    str) go into the index. Errors are raised on every rank alike (see
    meshckpt.Error). The GIL is released while the files are written.
    """
    _meshckpt._save(comm, str(prefix), list(tensors), int(step), metadata)


def restore(comm, prefix, tensors):
    """Collective: fills the arrays of ``tensors`` in place from ``prefix``.

    Each tensor is read in the layout given now, whatever mesh and rank count
    saved it; every byte is checked against the checksums taken at save time
    (DataLossError otherwise). Arrays must be writeable, C-contiguous and of
    the saved dtype and the device part's shape (ValueError otherwise). A
    missing checkpoint raises FileNotFoundError, a missing key KeyError.
    """
    _meshckpt._restore(comm, str(prefix), list(tensors))


def _box_of(box, shape):
    """(origin, shape) from a tuple of slices / ints, or an (origin, shape) pair."""
    if (isinstance(box, (tuple, list)) and len(box) == 2 and
            all(isinstance(b, (tuple, list)) for b in box)):
        return list(box[0]), list(box[1])
    if not isinstance(box, tuple):
        box = (box,)
    if len(box) > len(shape):
        raise ValueError("box has %d dimensions, the tensor %d" % (len(box), len(shape)))
    origin, size = [], []
    for dim, n in enumerate(shape):
        b = box[dim] if dim < len(box) else slice(None)
        if isinstance(b, slice):
            start, stop, step = b.indices(n)
            if step != 1:
                raise ValueError("box slices must have step 1")
            origin.append(start)
            size.append(max(0, stop - start))
        elif hasattr(b, "__index__") and not isinstance(b, bool):
            b = b.__index__()
            if not -n <= b < n:
                raise ValueError("index %d out of range for dimension %d of size %d"
                                 % (b, dim, n))
            origin.append(b % n)
            size.append(1)
        else:
            raise ValueError("a box is a tuple of slices or ints, or (origin, shape)")
    return origin, size


class Reader:
    """An open checkpoint, read from this process alone (no MPI needed).

    Works on meshckpt's checkpoints (and any other format CheckpointReader
    opens). Every value read is verified against the checksums taken at save
    time. Iterating yields a VariableInfo (key, dtype, shape, layout) per
    tensor, sorted by key; ``key in reader`` and ``reader[key]`` work too.
    Use as a context manager, or call close(), to close the files.
    """

    def __init__(self, path, verify_checksums=True):
        self._r = _meshckpt._Reader.open(str(path), verify_checksums)

    def close(self):
        self._r.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def prefix(self):
        return self._r.prefix

    def keys(self):
        """Every tensor's key, sorted."""
        return self._r.keys()

    def variables(self):
        """A VariableInfo per tensor, sorted by key."""
        return self._r.variables()

    def info(self, key):
        """The VariableInfo of ``key``; KeyError when there is none."""
        return self._r.info(key)

    def dtype(self, key):
        return self._r.info(key).dtype

    def shape(self, key):
        return self._r.info(key).shape

    def layout(self, key):
        """The layout string the tensor was saved with, on the saving mesh."""
        return self._r.info(key).layout

    def dtypes(self):
        return {v.key: v.dtype for v in self._r.variables()}

    def shapes(self):
        return {v.key: v.shape for v in self._r.variables()}

    def layouts(self):
        return {v.key: v.layout for v in self._r.variables()}

    @property
    def mesh(self):
        """The saving job's mesh, as a string."""
        return self._r.mesh

    @property
    def step(self):
        return self._r.step

    @property
    def save_counter(self):
        return self._r.save_counter

    @property
    def timestamp(self):
        """Seconds since the epoch at commit."""
        return self._r.timestamp

    @property
    def metadata(self):
        """The user metadata saved with the checkpoint (str to str)."""
        return self._r.metadata

    def read(self, key, box=None, raw=False):
        """The tensor ``key`` (or a box of it) as a new numpy array, verified.

        box: a tuple of slices (step 1) or ints, as numpy indexing, or an
        (origin, shape) pair of sequences, in global coordinates; ints keep
        their dimension (of size 1). Only the tiles overlapping the box are
        read.

        dtypes: numeric tensors come back in the numpy dtype of the same name,
        bool as numpy.bool_. bfloat16 (which numpy lacks) comes back as
        float32 values, exactly; with raw=True as uint16 arrays of the
        bfloat16 bit patterns instead. Strings come back as an object array
        of bytes objects.

        KeyError for an unknown key, ValueError for a box outside the tensor,
        DataLossError when a checksum does not match.
        """
        if box is None:
            return self._r.read(key, None, None, raw)
        origin, shape = _box_of(box, self._r.info(key).shape)
        return self._r.read(key, origin, shape, raw)

    def read_value(self, key):
        """A scalar value (an int64, float64 or string rank-0 tensor) as int, float or bytes."""
        return self._r.read_value(key)

    def verify(self, raise_on_error=True):
        """Re-reads every chunk and checks every checksum.

        Raises DataLossError listing every problem found (or, with
        raise_on_error=False, returns their list; empty when intact).
        """
        problems = self._r.verify()
        if problems and raise_on_error:
            from ._errors import DataLossError

            raise DataLossError("DATA_LOSS", "; ".join(problems))
        return problems

    def items(self):
        """(key, array) for every tensor, read one at a time."""
        for key in self._r.keys():
            yield key, self.read(key)

    def __iter__(self):
        return iter(self._r.variables())

    def __len__(self):
        return len(self._r.keys())

    def __contains__(self, key):
        return self._r.has(key)

    def __getitem__(self, key):
        return self.read(key)

    def __repr__(self):
        return "meshckpt.Reader(%r, %d tensors)" % (self.prefix, len(self))


def open(path, verify_checksums=True):  # noqa: A001 (meshckpt.open, like tf.train.load_checkpoint)
    """Opens the checkpoint at ``path`` (the prefix, without .index / .h5).

    FileNotFoundError when there is none, DataLossError when it is damaged.
    """
    return Reader(path, verify_checksums)


class CheckpointManager:
    """Numbered checkpoints in a directory with retention (tf.train.CheckpointManager).

    Collective over ``comm`` (an mpi4py communicator, or None). ``tensors`` are
    Tensors as for save(), whose arrays the manager saves from and restores
    into in place, for its lifetime. A key "model/dense/kernel" is saved as
    the object-graph key "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE".

    max_to_keep: how many checkpoints stay (None keeps all).
    keep_every_n_hours: additionally keep one checkpoint per this many hours.
    async_save: save() returns once the arrays are copied; the write and
    commit continue in the background (the arrays may change meanwhile);
    every later call, wait_until_finished() and close() wait for it.

    Call close() (or use ``with``) on every rank: it waits for an async save.
    """

    def __init__(self, comm, directory, tensors, max_to_keep=5, keep_every_n_hours=0.0,
                 checkpoint_name="ckpt", async_save=False):
        self._m = _meshckpt._Manager(comm, str(directory), list(tensors), max_to_keep,
                                     float(keep_every_n_hours), checkpoint_name,
                                     bool(async_save))

    def save(self, step=None, checkpoint_number=None):
        """Saves a checkpoint; returns its prefix (None when none was due)."""
        return self._m.save(step, checkpoint_number)

    def restore_or_initialize(self, match="all"):
        """Restores the newest checkpoint into the arrays; returns its prefix,
        or None (arrays untouched) when there is none. match: "all" (every
        value used and every tensor matched), "existing" or "partial"."""
        return self._m.restore_or_initialize(match)

    def wait_until_finished(self):
        self._m.wait_until_finished()

    @property
    def latest_checkpoint(self):
        return self._m.latest_checkpoint

    @property
    def checkpoints(self):
        """Managed checkpoints, oldest first."""
        return self._m.checkpoints

    @property
    def directory(self):
        return self._m.directory

    def close(self):
        self._m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["Layout", "Mesh", "Reader", "Tensor", "VariableInfo", "CheckpointManager",
           "allocate", "open", "restore", "save"]
