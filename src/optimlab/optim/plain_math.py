"""LaTeX from the rules' docstrings as plain Unicode text for a terminal (``optimlab explain``).

Only the subset the docstrings use: Greek letters, ``\\frac``, ``\\sqrt``, sub/superscripts,
``\\text``, accents, ``cases`` and spacing. Anything else loses its backslash and stays
readable.
"""

from __future__ import annotations

import re

__all__ = ["plain_math", "plain_text"]

_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ", "epsilon": "ε",
    "varepsilon": "ε", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "pi": "π", "Pi": "Π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "psi": "ψ",
    "omega": "ω", "nabla": "∇", "leftarrow": "←", "rightarrow": "→", "to": "→",
    "cdot": "·", "odot": "⊙", "times": "×", "le": "≤", "ge": "≥", "leq": "≤", "geq": "≥",
    "neq": "≠", "approx": "≈", "infty": "∞", "sum": "Σ", "prod": "Π", "in": "∈",
    "lVert": "‖", "rVert": "‖", "langle": "⟨", "rangle": "⟩", "ldots": "…", "dots": "…",
    "max": "max", "min": "min", "pm": "±", "mp": "∓",
}
_DROP = ("left", "right", "big", "Big", "bigg", "Bigg", "displaystyle", "!", ",", ";", ":")
_SPACES = {"quad": "   ", "qquad": "     ", " ": " "}
_ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}
_WRAPPERS = ("text", "mathrm", "texttt", "textbf", "mathbf", "operatorname", "textit")


def _group(s: str, i: int) -> tuple[str, int]:
    """The argument starting at ``s[i]``: a ``{…}`` group (braces matched) or one token."""
    while i < len(s) and s[i].isspace():
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1 : j], j + 1
        return s[i + 1 :], len(s)
    if s[i] == "\\":
        m = re.match(r"\\[A-Za-z]+", s[i:])
        if m:
            return m.group(0), i + len(m.group(0))
    return s[i], i + 1


def _wrapped(text: str) -> str:
    """Parenthesise a compound argument of a fraction or root: ``(a + b)``, but ``x``."""
    text = text.strip()
    return text if re.fullmatch(r"[\w.\u0300-\u036f′^_]+", text) else f"({text})"


def _convert(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            assert m is not None
            name, i = m.group(1), i + len(m.group(0))
            if name in ("frac", "tfrac", "dfrac"):
                num, i = _group(s, i)
                den, i = _group(s, i)
                out.append(f"{_wrapped(_convert(num))}/{_wrapped(_convert(den))} ")
            elif name == "sqrt":
                arg, i = _group(s, i)
                out.append("√" + _wrapped(_convert(arg)))
            elif name in _ACCENTS:
                arg, i = _group(s, i)
                text = _convert(arg)
                out.append(text[:1] + _ACCENTS[name] + text[1:])
            elif name in _WRAPPERS:
                arg, i = _group(s, i)
                out.append(arg.replace("\\_", "_") if name.startswith("text") else _convert(arg))
            elif name in _SPACES:
                out.append(_SPACES[name])
            elif name in _DROP:
                out.append(" " if name in (",", ";", ":") else "")
            elif name in ("{", "}", "|", "%", "_"):
                out.append(name)
            else:
                out.append(_SYMBOLS.get(name, name))
        elif c in "_^":
            arg, i = _group(s, i + 1)
            text = _convert(arg)
            simple = len(text) == 1 or text.isdigit() or text.startswith("(") and text.endswith(")")
            out.append(c + (text if simple else f"({text})"))
        elif c in "{}":
            i += 1
        elif c == "&":
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _cases(s: str) -> str:
    r"""``\begin{cases} a & b \\ c & d \end{cases}`` → ``{ a  if b;  c  if d }``."""

    def one(m: re.Match[str]) -> str:
        rows = [r.split("&") for r in m.group(1).split(r"\\") if r.strip()]
        parts = []
        for value, *condition in rows:
            when = " ".join(c.strip() for c in condition)
            word = "" if not when or "otherwise" in when or "if" in when else "if "
            parts.append(f"{value.strip()}  {word}{when}".rstrip())
        return "\\{ " + ";  ".join(parts) + " \\}"

    return re.sub(r"\\begin\{cases\}(.*?)\\end\{cases\}", one, s, flags=re.S)


def plain_math(latex: str) -> list[str]:
    """The lines of a ``.. math::`` block (``\\\\`` separates lines) as plain text."""
    lines = []
    for row in _cases(latex).split("\\\\"):
        text = " ".join(_convert(row).split())
        if text:
            lines.append(text)
    return lines


def plain_text(prose: str) -> str:
    """Docstring prose with ``:math:`…``` rendered and reST literals unquoted."""
    prose = re.sub(r":math:`([^`]*)`", lambda m: " ".join(_convert(m.group(1)).split()), prose)
    prose = re.sub(r":(?:func|class|meth|mod|data):`~?([^`]*)`", r"\1", prose)
    return prose.replace("``", "`")
