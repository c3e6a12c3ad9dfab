"""Checked .npz reading and byte-deterministic .npz writing shared by the format modules.

`np.savez` stamps the current time into the zip entries, so two runs with the same seed would
write different bytes; `save_npz` uses a fixed timestamp instead. Files stay plain `np.load`-able.
"""
import io
import os
import zipfile

import numpy as np

from modules.utils import ShapeLabError, atomic_write, require_file

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def save_npz(path, compress=False, **arrays):
    """Write arrays like `np.savez` (or `np.savez_compressed`), atomically and with reproducible bytes."""
    with atomic_write(os.fspath(path)) as tmp:
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(tmp, "w", compression=method) as zf:
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_TIME)
                info.compress_type = method
                zf.writestr(info, buf.getvalue())


def load_npz(path, fields, what="file"):
    """Load the named fields of an .npz into a dict; a missing file, field or a broken zip is a ShapeLabError."""
    path = os.fspath(path)
    require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [f for f in fields if f not in data.files]
            if missing:
                raise ShapeLabError(f"{path}: {what} lacks field(s) {missing} (has {sorted(data.files)})")
            return {f: np.asarray(data[f]) for f in fields}
    except ShapeLabError:
        raise
    except Exception as err:  # BadZipFile, ValueError, OSError ...
        raise ShapeLabError(f"{path}: not a readable .npz {what} ({type(err).__name__}: {err})") from err


def check_array(arr, shape, path, field, finite=True):
    """Check `arr` against `shape` (None = any size on that axis); name file and field on failure."""
    arr = np.asarray(arr)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ",".join("N" if s is None else str(s) for s in shape) + ")"
        raise ShapeLabError(f"{path}: field '{field}' must have shape {want}, got {arr.shape}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ShapeLabError(f"{path}: field '{field}' contains NaN or inf")
    return arr
