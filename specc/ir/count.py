"""Symbolic counts: small polynomials in size symbols (`vocab`, `B`, `T`, ...).

An op states its cost (multiply-adds, kept activations) with these before any
data has bound its sizes; explain and the memory guard add them up and print
or evaluate them once the symbols are known.
"""

from __future__ import annotations

#: Symbols in the order formulas print them: batch and time first.
_SYMBOL_ORDER = {"B": 0, "T": 1}


def _monomial_key(mono: tuple[str, ...]) -> tuple:
    return (-len(mono), [(_SYMBOL_ORDER.get(s, 2), s) for s in mono])


class Count:
    """A polynomial with integer coefficients in size symbols (`vocab`, `B`, ...).

    `Count(5)` is the number 5; `Count.symbol("vocab") * 32 + 8` is 32·vocab + 8.
    """

    __slots__ = ("terms",)

    def __init__(self, value: int = 0, terms: dict[tuple[str, ...], int] | None = None) -> None:
        self.terms: dict[tuple[str, ...], int] = {}
        if terms:
            self.terms = {k: v for k, v in terms.items() if v}
        if value:
            self.terms[()] = self.terms.get((), 0) + value

    @classmethod
    def symbol(cls, name: str) -> Count:
        return cls(terms={(name,): 1})

    @classmethod
    def of_dim(cls, dim: int | str) -> Count:
        """A dimension: a number, a symbol, or a sum such as ``vocab + 64`` (concat)."""
        if isinstance(dim, int):
            return cls(dim)
        total = cls()
        for part in str(dim).split("+"):
            part = part.strip()
            total = total + (cls(int(part)) if part.isdigit() else cls.symbol(part))
        return total

    @classmethod
    def product(cls, dims: tuple) -> Count:
        out = cls(1)
        for d in dims:
            out = out * cls.of_dim(d)
        return out

    def _coerce(self, other: Count | int) -> Count:
        return other if isinstance(other, Count) else Count(other)

    def __add__(self, other: Count | int) -> Count:
        other = self._coerce(other)
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + v
        return Count(terms=terms)

    __radd__ = __add__

    def __mul__(self, other: Count | int) -> Count:
        other = self._coerce(other)
        terms: dict[tuple[str, ...], int] = {}
        for k1, v1 in self.terms.items():
            for k2, v2 in other.terms.items():
                k = tuple(sorted(k1 + k2, key=lambda s: (_SYMBOL_ORDER.get(s, 2), s)))
                terms[k] = terms.get(k, 0) + v1 * v2
        return Count(terms=terms)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Count(other)
        return isinstance(other, Count) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.terms.items())))

    def __repr__(self) -> str:
        return f"Count({self.text()!r})"

    @property
    def symbols(self) -> list[str]:
        found = {s for mono in self.terms for s in mono}
        return sorted(found, key=lambda s: (_SYMBOL_ORDER.get(s, 2), s))

    @property
    def value(self) -> int | None:
        """The number, or None while a symbol is unbound."""
        if any(mono for mono in self.terms):
            return None
        return self.terms.get((), 0)

    def subs(self, values: dict[str, int]) -> Count:
        out = Count()
        for mono, coeff in self.terms.items():
            term = Count(coeff)
            for s in mono:
                term = term * (values[s] if s in values else Count.symbol(s))
            out = out + term
        return out

    def text(self) -> str:
        """``161·vocab + 20,864``; a plain number with thousands separators when bound."""
        if not self.terms:
            return "0"
        parts = []
        for mono in sorted(self.terms, key=_monomial_key):
            coeff = self.terms[mono]
            factors = ([] if coeff == 1 and mono else [f"{coeff:,}"]) + list(mono)
            parts.append("·".join(factors))
        return " + ".join(parts).replace("+ -", "- ")
