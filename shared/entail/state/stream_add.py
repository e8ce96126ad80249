"""A bus message's ``XADD`` sent from inside a script, so that a write and the
message it announces are one atomic, durable round trip (a cache hit's record and
its audit message; a new decision's record and its job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# stream_add(stream, first): ARGV[first .. first + 2] the trimming ('' or 'MAXLEN',
# '~' or '=', the length), then the fields and values to the end of ARGV
STREAM_ADD_LUA = """
local function stream_add(stream, first)
  local xadd = {stream}
  if ARGV[first] ~= '' then
    xadd[2] = ARGV[first]; xadd[3] = ARGV[first + 1]; xadd[4] = ARGV[first + 2]
  end
  xadd[#xadd + 1] = '*'
  for i = first + 3, #ARGV do xadd[#xadd + 1] = ARGV[i] end
  return redis.call('XADD', unpack(xadd))
end
"""


@dataclass(frozen=True)
class StreamAdd:
    """An ``XADD`` as a bus would send it (``*`` ids only; entail.bus.port.InStoreBus)."""

    stream: str
    fields: Sequence[tuple[Any, Any]]
    maxlen: int | None = None
    approximate: bool = True

    def args(self) -> list[Any]:
        """The script arguments :data:`STREAM_ADD_LUA` reads (the last ones of ARGV)."""
        out: list[Any] = ["", "", ""]
        if self.maxlen is not None:
            out = ["MAXLEN", "~" if self.approximate else "=", self.maxlen]
        for name, value in self.fields:
            out += (name, value)
        return out


class RecordedAdd:
    """A pipeline stand-in that keeps the ``XADD`` a bus queues on it
    (:meth:`~entail.bus.port.InStoreBus.queue_publish`), to be sent inside a script;
    anything but a plain ``*`` add with at most a MAXLEN is left unrecorded."""

    add: StreamAdd | None = None

    def xadd(
        self,
        name: str,
        fields: dict[Any, Any],
        id: str = "*",
        maxlen: int | None = None,
        approximate: bool = True,
        nomkstream: bool = False,
        minid: Any = None,
        limit: int | None = None,
    ) -> None:
        if id == "*" and not nomkstream and minid is None and limit is None:
            self.add = StreamAdd(name, list(fields.items()), maxlen, approximate)
