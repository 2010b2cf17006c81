"""Results stored as JSON plus arrays, never as pickles: reading a stored result cannot run code.

A result is a tree of dicts, lists, tuples, strings, numbers, numpy arrays, torch tensors, pandas
tables and dataclasses of this package.  :func:`dumps` writes it as one ``.npz`` archive: the tree
as JSON (``__tree__``) and every array beside it; :func:`loads` reads it back with
``allow_pickle=False``.  A dataclass is rebuilt only from a module of ``scaling_utils``, so a
crafted file can at most name one of this package's own result types.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import math
from typing import Any

import numpy as np

PACKAGE = "scaling_utils"
_TREE = "__tree__"


class CodecError(ValueError):
    """A value that cannot be stored, or stored bytes that do not describe a result."""


def dumps(value: Any) -> bytes:
    """The bytes of an ``.npz`` archive holding ``value`` (JSON tree + arrays)."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays)
    text = json.dumps(tree, allow_nan=False, separators=(",", ":"))
    buffer = io.BytesIO()
    np.savez(buffer, **{_TREE: np.frombuffer(text.encode(), dtype=np.uint8)}, **arrays)
    return buffer.getvalue()


def loads(payload: bytes) -> Any:
    """The value :func:`dumps` stored in ``payload``."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as err:  # not an archive, or one holding pickled objects
        raise CodecError(f"not a stored result ({err})") from err
    if _TREE not in arrays:
        raise CodecError("not a stored result (no __tree__ entry)")
    try:
        return _decode(json.loads(arrays.pop(_TREE).tobytes().decode()), arrays)
    except CodecError:
        raise
    except Exception as err:  # a malformed tree: missing keys, unknown names, wrong types
        raise CodecError(f"not a stored result ({type(err).__name__}: {err})") from err


def _encode(value: Any, arrays: dict) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"__type__": "float", "value": repr(value)}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, tuple):
        return {"__type__": "tuple", "items": [_encode(v, arrays) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "__type__" not in value:
            return {k: _encode(v, arrays) for k, v in value.items()}
        return {"__type__": "dict",
                "items": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return {"__type__": "objects", "shape": list(value.shape),
                    "items": [_encode(v, arrays) for v in value.ravel().tolist()]}
        return {"__type__": "ndarray", "key": _put(arrays, value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not _in_package(cls.__module__):
            raise CodecError(f"only dataclasses of {PACKAGE} can be stored, not {cls.__qualname__}")
        return {"__type__": "dataclass", "class": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: _encode(getattr(value, f.name), arrays)
                           for f in dataclasses.fields(value)}}
    module = type(value).__module__.partition(".")[0]
    if module == "torch":
        return _encode_tensor(value, arrays)
    if module == "pandas":
        return _encode_pandas(value, arrays)
    raise CodecError(f"cannot store a {type(value).__name__} ({value!r:.60}); store plain "
                     "values, arrays, tables or dataclasses of this package")


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _put(arrays: dict, array: np.ndarray) -> str:
    key = f"a{len(arrays)}"
    arrays[key] = np.asarray(array)  # keeps 0-d arrays 0-d
    return key


def _encode_tensor(tensor, arrays: dict) -> dict:
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise CodecError(f"cannot store a {type(tensor).__name__}")
    tensor = tensor.detach().cpu().contiguous()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: keep the bits
        return {"__type__": "tensor", "dtype": dtype, "key": _put(arrays, tensor.view(torch.int16).numpy())}
    return {"__type__": "tensor", "dtype": dtype, "key": _put(arrays, tensor.numpy())}


def _encode_pandas(value, arrays: dict) -> dict:
    import pandas as pd

    if isinstance(value, pd.Series):
        return {"__type__": "series", "name": _encode(value.name, arrays),
                "values": _encode(value.to_numpy(), arrays), "index": _encode_index(value.index, arrays)}
    if isinstance(value, pd.DataFrame):
        if not value.columns.is_unique:
            raise CodecError("cannot store a table with repeated column names")
        return {"__type__": "dataframe", "columns": [_encode(c, arrays) for c in value.columns],
                "data": [_encode(value[c].to_numpy(), arrays) for c in value.columns],
                "index": _encode_index(value.index, arrays)}
    raise CodecError(f"cannot store a {type(value).__name__}")


def _encode_index(index, arrays: dict):
    import pandas as pd

    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None:
        return None
    if isinstance(index, pd.MultiIndex):
        raise CodecError("cannot store a table with a MultiIndex; reset_index() first")
    return {"values": _encode(index.to_numpy(), arrays), "name": _encode(index.name, arrays)}


def _decode(node: Any, arrays: dict) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("__type__")
    if kind is None:
        return {k: _decode(v, arrays) for k, v in node.items()}
    if kind == "float":
        return float(node["value"])
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in node["items"])
    if kind == "dict":
        return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in node["items"]}
    if kind == "ndarray":
        return arrays[node["key"]]
    if kind == "objects":
        out = np.empty(len(node["items"]), dtype=object)
        out[:] = [_decode(v, arrays) for v in node["items"]]
        return out.reshape(node["shape"])
    if kind == "tensor":
        return _decode_tensor(node, arrays)
    if kind == "dataclass":
        return _decode_dataclass(node, arrays)
    if kind in ("dataframe", "series"):
        return _decode_pandas(node, arrays)
    raise CodecError(f"unknown stored type {kind!r}")


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _decode_tensor(node: dict, arrays: dict):
    import torch

    dtype = getattr(torch, node["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise CodecError(f"unknown tensor dtype {node['dtype']!r}")
    tensor = torch.from_numpy(np.array(arrays[node["key"]]))
    return tensor.view(dtype) if dtype == torch.bfloat16 else tensor


def _decode_dataclass(node: dict, arrays: dict):
    module_name, _, qualname = node["class"].partition(":")
    if not _in_package(module_name):
        raise CodecError(f"refusing to rebuild {node['class']!r}: only {PACKAGE} types are stored")
    cls: Any = importlib.import_module(module_name)
    for part in qualname.split("."):  # public names only, never through another module
        cls = getattr(cls, part, None) if not part.startswith("_") else None
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__ == module_name and cls.__qualname__ == qualname):
        raise CodecError(f"{node['class']!r} is not a dataclass defined in {PACKAGE}")
    values = {k: _decode(v, arrays) for k, v in node["fields"].items()}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(values) != set(fields):
        raise CodecError(f"stored {qualname} has fields {sorted(values)}, the code has "
                         f"{sorted(fields)} (written by another version)")
    obj = cls(**{k: v for k, v in values.items() if fields[k].init})
    for k, v in values.items():
        if not fields[k].init:
            object.__setattr__(obj, k, v)
    return obj


def _decode_pandas(node: dict, arrays: dict):
    import pandas as pd

    index = node["index"]
    if index is not None:
        index = pd.Index(_decode(index["values"], arrays), name=_decode(index["name"], arrays))
    if node["__type__"] == "series":
        return pd.Series(_column(_decode(node["values"], arrays)), index=index, name=_decode(node["name"], arrays))
    columns = [_hashable(_decode(c, arrays)) for c in node["columns"]]
    data = {c: _column(_decode(v, arrays)) for c, v in zip(columns, node["data"])}
    return pd.DataFrame(data, index=index, columns=columns if columns else None)


def _column(values: np.ndarray):
    """Object columns go back as lists, so that pandas infers their dtype (str) as it did."""
    return values.tolist() if values.dtype.kind == "O" else values
