"""Large bytes built piece by piece without a second full-size copy (issue 7).

``b"".join(pieces)`` holds every piece and the result at once, and ``bytes(bytearray)``
copies the whole buffer once more; :class:`BytesBuilder` writes each piece into one buffer
of the announced size and hands that very buffer out as ``bytes``.
"""

from __future__ import annotations

import io
from typing import TypeAlias

__all__ = ["BytesBuilder"]

_Piece: TypeAlias = bytes | bytearray | memoryview


class BytesBuilder:
    """Bytes of at most ``capacity`` bytes, written in order, returned by :meth:`value`.

    The buffer is allocated once at ``capacity``; writing more still works (the buffer
    grows), writing less gives a shorter result. CPython's ``BytesIO.getvalue()`` returns
    its buffer without copying it when nothing else shares it, which is what makes the
    result free; elsewhere it costs one copy, as ``b"".join`` would.
    """

    __slots__ = ("_out",)

    def __init__(self, capacity: int) -> None:
        self._out = io.BytesIO()
        if capacity > 0:
            # One write at the end allocates the whole buffer exactly (no over-allocation,
            # no growth by copying); the zeros are overwritten by what follows.
            self._out.seek(capacity - 1)
            self._out.write(b"\0")
            self._out.seek(0)

    def write(self, piece: _Piece) -> None:
        """Append ``piece``."""
        self._out.write(piece)

    def tell(self) -> int:
        """Bytes written so far."""
        return self._out.tell()

    def value(self) -> bytes:
        """What was written; the builder is spent afterwards."""
        out = self._out
        out.truncate(out.tell())
        value = out.getvalue()
        out.close()
        return value
