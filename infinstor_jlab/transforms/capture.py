"""Capturing a notebook cell as a transform: cleaning, syntax check, entry-point detection."""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest

#: The InfinStor entry points, in the order a cell's definitions are looked for.
ENTRY_POINTS = (
    "infin_transform_one_object",
    "infin_transform_dir_by_dir",
    "infin_transform_all_objects",
    "infin_transform_csv_to_pd",
)
SCRIPT = "script"

_HARNESS_MARK = re.compile(r"#\s*infinstor\b", re.IGNORECASE)
_RESET = re.compile(r"^\s*%reset\s+-f\s*$")


@dataclass(frozen=True)
class CapturedCode:
    code: str
    sha256: str
    entry_point: str  # one of ENTRY_POINTS, or "script"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "sha256": self.sha256, "entry_point": self.entry_point}


def clean_source(source: str) -> str:
    """Drop the test-harness lines a cell may carry: ``%reset -f`` and any line marked
    ``# infinstor`` (the original convention for lines that only make sense in the
    notebook, such as a call to test_infin_transform)."""
    kept = [
        line
        for line in source.splitlines()
        if not _RESET.match(line) and not _HARNESS_MARK.search(line)
    ]
    return "\n".join(kept).strip("\n") + "\n"


def detect_entry_point(tree: ast.Module) -> str:
    defined = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    found = [name for name in ENTRY_POINTS if name in defined]
    if not found:
        _refuse_near_misses(defined)
    if len(found) > 1:
        raise BadRequest(
            "The cell defines more than one transform entry point ("
            + ", ".join(found)
            + "); keep exactly one."
        )
    return found[0] if found else SCRIPT


#: How close (difflib ratio) a function name must be to an entry point to be taken for a
#: misspelling of it. 0.8 catches a dropped or swapped word part ("one_obj", "transfrom")
#: while leaving ordinary helper names alone.
_NEAR_MISS_CUTOFF = 0.8


def _refuse_near_misses(defined: set[str]) -> None:
    """A cell with no entry point runs as a script; but one defining a function that looks
    like a misspelt entry point would then "succeed" having done nothing, so refuse it."""
    for name in sorted(defined):
        close = difflib.get_close_matches(name, ENTRY_POINTS, n=1, cutoff=_NEAR_MISS_CUTOFF)
        if not close and name.startswith("infin_transform_"):
            close = difflib.get_close_matches(name, ENTRY_POINTS, n=1, cutoff=0.0)
        if close:
            raise BadRequest(
                f"The cell defines {name}, which is not an entry point: did you mean "
                f"{close[0]}? Rename it to one of {', '.join(ENTRY_POINTS)} (or rename it "
                "away from them to run the cell as a plain script)."
            )


def capture(source: str) -> CapturedCode:
    """Clean and syntax-check a cell; raises BadRequest with the line of a syntax error."""
    if not source or not source.strip():
        raise BadRequest("The cell is empty; write the transform in it first.")
    code = clean_source(source)
    try:
        tree = ast.parse(code, filename="<transform>")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        hint = ""
        if exc.text and exc.text.lstrip().startswith(("%", "!")):
            hint = (
                " IPython magics and shell escapes cannot run outside the notebook; "
                "remove the line or mark it with '# infinstor'."
            )
        raise BadRequest(f"The cell is not valid Python ({where}: {exc.msg}).{hint}") from exc
    return CapturedCode(
        code=code,
        sha256=hashlib.sha256(code.encode("utf-8")).hexdigest(),
        entry_point=detect_entry_point(tree),
    )


def parse_kwargs(text: str | dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments for the entry point: a JSON object."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        value: Any = text
    else:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise BadRequest(f"The keyword arguments are not valid JSON: {exc}.") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise BadRequest('The keyword arguments must be a JSON object, e.g. {"size": 224}.')
    if any(not k.isidentifier() for k in value):
        bad = [k for k in value if not k.isidentifier()]
        raise BadRequest(f"Keyword argument names must be Python identifiers: {bad}.")
    return value
