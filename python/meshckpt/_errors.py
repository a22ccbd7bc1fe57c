"""The exceptions meshckpt raises.

Every error carries the status code of the C++ library (``code``, e.g.
``"DATA_LOSS"``) and its message (``message``, also ``str(e)`` except for
KeyError, which quotes it). All derive from :class:`Error`, and the common
ones also from the built-in exception a Python program would catch:

==================  ============================  =========================
status code         class                         also a
==================  ============================  =========================
NOT_FOUND (file)    NotFoundError                 FileNotFoundError
NOT_FOUND (key)     KeyNotFoundError              KeyError
INVALID_ARGUMENT    InvalidArgumentError          ValueError
DATA_LOSS           DataLossError                 -
anything else       Error                         -
==================  ============================  =========================
"""

# absl::StatusCode values.
_INVALID_ARGUMENT = 3
_NOT_FOUND = 5
_DATA_LOSS = 15


class Error(Exception):
    """A meshckpt error; ``code`` is the status code's name, ``message`` the text."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class DataLossError(Error):
    """Corrupt or truncated data: a checksum mismatch, a damaged index or data file."""


class NotFoundError(Error, FileNotFoundError):
    """No checkpoint (or directory) at the path given."""


class KeyNotFoundError(Error, KeyError):
    """No tensor with the key given in the checkpoint."""


class InvalidArgumentError(Error, ValueError):
    """Bad input: wrong dtype, shape, layout, box or array."""


def exception_class(code, missing_key=False):
    """The class for an absl::StatusCode value (used by the extension)."""
    if code == _NOT_FOUND:
        return KeyNotFoundError if missing_key else NotFoundError
    if code == _INVALID_ARGUMENT:
        return InvalidArgumentError
    if code == _DATA_LOSS:
        return DataLossError
    return Error
