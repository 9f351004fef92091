"""The published snapshot of one (namespace, surface): the candidate pool and the Beta
posterior of each candidate, as aligned arrays, and its compact binary encoding.

One blob per snapshot keeps a publish to a single write and a read to a single fetch
(300,000 posteriors: about 3 ms as blobs against 0.36 s as hash fields), and lets the
serving process build its sampling arrays once per version instead of per request.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MAGIC = b"BPS1"
_HEADER = struct.Struct("<4sI")  # magic, length of the JSON metadata


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Candidates of one (namespace, surface) with their posteriors, at one version."""

    namespace: str
    surface: str
    version: str
    published_at: datetime
    as_of: datetime | None
    item_ids: tuple[str, ...]
    alpha: np.ndarray
    beta: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if self.alpha.shape != (n,) or self.beta.shape != (n,):
            raise ValueError("alpha and beta must have one value per item")
        if n and (not np.all(self.alpha > 0) or not np.all(self.beta > 0)):
            raise ValueError("alpha and beta must be > 0")

    def __len__(self) -> int:
        return len(self.item_ids)

    def encode(self) -> bytes:
        """The snapshot as one blob (``decode`` reads it back)."""
        return b"".join(self.encoded_parts())

    def encoded_parts(self) -> list[bytes | memoryview]:
        """The encoding in pieces whose concatenation is ``encode()``: header and
        metadata, alpha, beta (views of the arrays, not copies) and the item ids. A
        writer can send the pieces one after another without building the whole blob.
        """
        meta = json.dumps(
            {
                "namespace": self.namespace,
                "surface": self.surface,
                "version": self.version,
                "published_at": self.published_at.isoformat(),
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "items": len(self.item_ids),
            }
        ).encode()
        return [
            _HEADER.pack(MAGIC, len(meta)) + meta,
            _little_endian_bytes(self.alpha),
            _little_endian_bytes(self.beta),
            "\n".join(self.item_ids).encode(),
        ]

    @classmethod
    def decode(cls, blob: bytes) -> Snapshot:
        """The snapshot ``encode`` wrote; its arrays are views of ``blob``, not copies."""
        magic, meta_length = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise ValueError("not a bandit snapshot")
        offset = _HEADER.size
        meta = json.loads(blob[offset : offset + meta_length])
        offset += meta_length
        n = meta["items"]
        alpha = np.frombuffer(blob, dtype="<f8", count=n, offset=offset)
        beta = np.frombuffer(blob, dtype="<f8", count=n, offset=offset + 8 * n)
        ids_bytes = blob[offset + 16 * n :]
        item_ids = tuple(ids_bytes.decode().split("\n")) if n else ()
        return cls(
            namespace=meta["namespace"],
            surface=meta["surface"],
            version=meta["version"],
            published_at=datetime.fromisoformat(meta["published_at"]),
            as_of=datetime.fromisoformat(meta["as_of"]) if meta["as_of"] else None,
            item_ids=item_ids,
            alpha=alpha,
            beta=beta,
        )


def _little_endian_bytes(values: np.ndarray) -> memoryview:
    """The float64 values as little-endian bytes, without a copy when they already are."""
    return memoryview(np.ascontiguousarray(values, dtype="<f8")).cast("B")
