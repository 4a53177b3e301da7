"""A reader of TensorFlow's tensor bundles (V2 checkpoints) in pure Python, without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index``, an immutable sorted table in LevelDB's SSTable
layout (blocks of prefix-compressed key/value entries, an index block, a 48-byte footer ending
in a magic number), mapping each tensor name to a ``BundleEntryProto`` (dtype, shape, shard,
offset, size); the empty key holds a ``BundleHeaderProto`` (number of shards, endianness). The
tensors are raw little-endian bytes in ``PREFIX.data-SSSSS-of-NNNNN``. Only the protobuf fields
needed here are decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meiyan.errors import ModelError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5  # compression type (1 byte) and masked CRC-32C (4 bytes)
# TensorFlow DataType enum values of the numeric types a checkpoint may hold.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32,
          23: np.uint64}


class CheckpointError(ModelError):
    """A TensorFlow checkpoint is missing, corrupt, or not what was expected."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lies: its TensorFlow dtype number, shape, shard, offset and size."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of a protobuf message: ints for varints and fixed-size fields,
    bytes for length-delimited ones."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            out.append((number, int.from_bytes(buf[pos : pos + width], "little")))
            pos += width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def _entry(value: bytes) -> BundleEntry:
    fields = dict.fromkeys(("dtype", "shard", "offset", "size"), 0)
    shape: list[int] = []
    names = {1: "dtype", 3: "shard", 4: "offset", 5: "size"}
    for number, field in _fields(value):
        if number in names and isinstance(field, int):
            fields[names[number]] = field
        elif number == 2 and isinstance(field, bytes):
            for dim_number, dim in _fields(field):
                if dim_number == 2 and isinstance(dim, bytes):
                    shape.append(int(dict(_fields(dim)).get(1, 0)))
        elif number == 7:
            raise ValueError("partitioned (sliced) variables are not supported")
    return BundleEntry(fields["dtype"], tuple(shape), fields["shard"], fields["offset"],
                       fields["size"])


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of the table block at ``offset``."""
    if offset + size + BLOCK_TRAILER > len(data):
        raise ValueError("block beyond the end of the file")
    if data[offset + size] != 0:
        raise ValueError("compressed table blocks are not supported")
    block = data[offset : offset + size]
    (restarts,) = struct.unpack_from("<I", block, size - 4)
    end = size - 4 - 4 * restarts
    entries: list[tuple[bytes, bytes]] = []
    key, pos = b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def _handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


class TensorBundle:
    """The tensors of the checkpoint ``prefix`` (the path without ``.index``)."""

    def __init__(self, prefix: str | Path) -> None:
        prefix = str(prefix)
        for suffix in (".index", ".meta"):
            prefix = prefix.removesuffix(suffix)
        if ".data-" in prefix:
            prefix = prefix[: prefix.index(".data-")]
        self.prefix = Path(prefix)
        index = Path(prefix + ".index")
        if not index.is_file():
            raise CheckpointError(f"{index}: no such checkpoint index (give the CKPT prefix)")
        try:
            self.entries, self.shards = self._read_index(index.read_bytes())
        except (ValueError, struct.error, IndexError) as e:
            raise CheckpointError(f"{index}: not a TensorFlow tensor bundle ({e})") from e

    @staticmethod
    def _read_index(data: bytes) -> tuple[dict[str, BundleEntry], int]:
        if len(data) < FOOTER_SIZE:
            raise ValueError("file too short")
        footer = data[-FOOTER_SIZE:]
        if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
            raise ValueError("bad table magic number")
        _, _, pos = _handle(footer, 0)  # the metaindex block is empty in tensor bundles
        index_offset, index_size, _ = _handle(footer, pos)
        entries: dict[str, BundleEntry] = {}
        shards = 1
        for _, handle in _block(data, index_offset, index_size):
            offset, size, _ = _handle(handle, 0)
            for key, value in _block(data, offset, size):
                if key == b"":
                    header = dict(_fields(value))
                    shards = int(header.get(1, 1))
                    if header.get(2, 0) != 0:
                        raise ValueError("big-endian checkpoints are not supported")
                else:
                    entries[key.decode()] = _entry(value)
        return entries, shards

    def names(self) -> list[str]:
        """Every tensor name, sorted."""
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._get(name).shape

    def _get(self, name: str) -> BundleEntry:
        if name not in self.entries:
            raise CheckpointError(f"{self.prefix}: no tensor {name!r} in the checkpoint")
        return self.entries[name]

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a NumPy array."""
        entry = self._get(name)
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{self.prefix}: tensor {name!r} has unsupported TensorFlow "
                                  f"dtype {entry.dtype}")
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder("<")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(f"{self.prefix}: tensor {name!r} is {entry.size} bytes, "
                                  f"expected {count * dtype.itemsize} for shape {entry.shape}")
        shard = Path(f"{self.prefix}.data-{entry.shard:05d}-of-{self.shards:05d}")
        try:
            with open(shard, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as e:
            raise CheckpointError(f"{shard}: cannot read ({e.strerror or e})") from e
        if len(raw) != entry.size:
            raise CheckpointError(f"{shard}: truncated (tensor {name!r})")
        return np.frombuffer(raw, dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
