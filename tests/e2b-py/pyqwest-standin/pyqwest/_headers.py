"""Case-insensitive multi-valued HTTP headers, the shape pyqwest's ``Headers`` has.

Names are kept lower-case (as reqwest/hyper hand them out); indexing sees the
first value of a name, ``add``/``getall``/``items`` see every value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

_MISSING: Any = object()


def _name(key: object) -> str:
    return str(key).lower()


class Headers(MutableMapping):
    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._pairs: list[tuple[str, str]] = []
        if items is None:
            return
        pairs = items.items() if isinstance(items, (Mapping, Headers)) else items
        for key, value in pairs:
            self._pairs.append((_name(key), str(value)))

    def __getitem__(self, key: object) -> str:
        name = _name(key)
        for k, v in self._pairs:
            if k == name:
                return v
        raise KeyError(key)

    def __setitem__(self, key: object, value: str) -> None:
        name = _name(key)
        self._pairs = [(k, v) for k, v in self._pairs if k != name]
        self._pairs.append((name, str(value)))

    def __delitem__(self, key: object) -> None:
        name = _name(key)
        kept = [(k, v) for k, v in self._pairs if k != name]
        if len(kept) == len(self._pairs):
            raise KeyError(key)
        self._pairs = kept

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._pairs:
            if k not in seen:
                seen.add(k)
                yield k

    def __len__(self) -> int:
        return len({k for k, _ in self._pairs})

    def __contains__(self, key: object) -> bool:
        name = _name(key)
        return any(k == name for k, _ in self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted(self._pairs) == sorted(other._pairs)
        if isinstance(other, Mapping):
            return sorted(self._pairs) == sorted((_name(k), str(v)) for k, v in other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"

    def pop(self, key: object, default: Any = _MISSING) -> str:
        name = _name(key)
        if name not in self:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = self[name]
        del self[name]
        return value

    def add(self, key: object, value: str) -> None:
        self._pairs.append((_name(key), str(value)))

    def getall(self, key: object) -> list[str]:
        name = _name(key)
        return [v for k, v in self._pairs if k == name]

    def clear(self) -> None:
        self._pairs = []

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        # Every value, duplicates included, like pyqwest's items view.
        return list(self._pairs)

    def values(self) -> list[str]:  # type: ignore[override]
        return [v for _, v in self._pairs]

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(iter(self))
