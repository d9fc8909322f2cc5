#!/usr/bin/env python3
"""Extract the Kaitai-generated Python parser from the seed text at test time.

The seed (`shared/seeds/002_*.txt`) is a web page: prose, usage snippets, then the
generated module, whose indentation was lost when the page was flattened to text. This
script finds the module (from the "# This is a generated file!" line to the end), and
rebuilds its indentation from the fixed shapes the Kaitai Struct Python generator emits:

* imports and the API-version check at module level; the first class is the root, every
  later class is nested in it; ``@property`` and ``def`` sit one level inside their class,
  except that an enum class has no methods, so a method after an enum's members belongs
  to the root class;
* inside a method, an ``if`` guards one statement (an attribute read) unless its first
  statement starts a repeated attribute (``self.x = []``), in which case it also holds the
  loop that fills it; ``while``/``for`` repeat loops end with ``i += 1``;
* brackets left open continue a statement on the next line; docstrings are kept as is.

The result is compiled and its structure checked (the classes and methods the harness uses)
before it is written, so a seed that does not fit these shapes fails loudly instead of
producing a wrong parser. Indented input (an unflattened copy) is accepted as well.

Usage: extract.py SEED_TXT OUT_PY
"""

from __future__ import annotations

import ast
import re
import sys

START = "# This is a generated file!"
IND = "    "


def bracket_delta(line: str) -> int:
    """Open minus closed brackets outside string literals (good enough for generated code)."""
    depth = 0
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif c == "#":
            break
        elif c in "\"'":
            quote = c * 3 if line.startswith(c * 3, i) else c
            i += len(quote)
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return depth


class Block:
    """An open indented block inside a method body."""

    def __init__(self, level: int, mode: str):
        self.level = level  # indentation of the statements inside
        self.mode = mode  # "body" | "single" | "repeat" | "loop"
        self.count = 0


def reindent(lines: list[str]) -> list[str]:
    out: list[str] = []
    root_seen = False
    in_enum = False
    class_level = 0  # indentation of the current class statement
    blocks: list[Block] = []  # innermost last; blocks[0] is the method/class/module body
    in_doc = False
    doc_level = 0
    cont_depth = 0  # open brackets carried over from previous lines
    cont_level = 0

    def close_finished() -> None:
        """Closes blocks whose statement count says they are done, cascading outwards."""
        while len(blocks) > 1:
            b = blocks[-1]
            if b.mode == "single" and b.count >= 1:
                blocks.pop()
                blocks[-1].count += 1
                continue
            break

    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if in_doc:
            out.append(IND * doc_level + line)
            if '"""' in line:
                in_doc = False
            continue
        if cont_depth > 0:
            out.append(IND * (cont_level + 1) + line)
            cont_depth += bracket_delta(line)
            continue

        if line.startswith(('"""', "'''")):
            level = blocks[-1].level if blocks else 0
            out.append(IND * level + line)
            quote = line[:3]
            if line.count(quote) == 1:
                in_doc = True
                doc_level = level
            continue

        if re.match(r"(import|from)\s", line) and not root_seen:
            blocks = [Block(0, "body")]
            out.append(line)
            continue

        m = re.match(r"class\s+\w+", line)
        if m:
            class_level = 1 if root_seen else 0
            root_seen = True
            in_enum = bool(re.search(r"\((Int)?Enum\)", line))
            out.append(IND * class_level + line)
            blocks = [Block(class_level + 1, "body")]
            continue

        if line.startswith("@") or re.match(r"def\s", line):
            if in_enum:
                # Enum classes have no methods: this one belongs to the root class again.
                in_enum = False
                class_level = 0
            level = class_level + 1
            out.append(IND * level + line)
            if line.startswith("def"):
                blocks = [Block(level + 1, "body")]
            continue

        if not blocks:
            blocks = [Block(0, "body")]
        cur = blocks[-1]
        level = cur.level
        out.append(IND * level + line)
        delta = bracket_delta(line)
        if delta > 0:
            cont_depth = delta
            cont_level = level
        if line.endswith(":") and delta == 0:
            head = line.split()[0].rstrip(":")
            if head in ("while", "for"):
                blocks.append(Block(level + 1, "loop"))
            elif head in ("if", "elif", "else", "with", "try", "except", "finally"):
                blocks.append(Block(level + 1, "single"))
            else:
                raise SystemExit(f"extract: unexpected block statement: {line!r}")
            continue
        # A simple statement.
        if cur.mode == "single" and cur.count == 0 and re.match(r"self\.\w+ = \[\]$", line):
            cur.mode = "repeat"  # a repeated attribute: the loop that fills it follows
            continue
        if cur.mode == "loop" and line == "i += 1":
            blocks.pop()
            parent = blocks[-1]
            parent.count += 1
            if parent.mode == "repeat":
                blocks.pop()
                blocks[-1].count += 1
            close_finished()
            continue
        if cur.mode in ("single", "loop", "body", "repeat"):
            cur.count += 1
        if cur.mode == "single":
            close_finished()
    return out


def extract(text: str) -> str:
    at = text.find(START)
    if at < 0:
        raise SystemExit(f"extract: {START!r} not found in the seed")
    lines = text[at:].splitlines()
    if any(l.startswith((" ", "\t")) and l.strip() for l in lines):
        src = "\n".join(lines) + "\n"  # already indented
    else:
        src = "\n".join(reindent(lines)) + "\n"
    check(src)
    return src


def check(src: str) -> None:
    """Compiles the module and checks the shape the harness relies on."""
    tree = ast.parse(src)
    roots = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if len(roots) != 1 or roots[0].name != "Websocket":
        raise SystemExit("extract: expected one root class Websocket")
    nested = {n.name: n for n in roots[0].body if isinstance(n, ast.ClassDef)}
    for name in ("Opcode", "FrameHeader", "InitialFrame", "Dataframe"):
        if name not in nested:
            raise SystemExit(f"extract: class Websocket.{name} missing")
    methods = {n.name for n in nested["FrameHeader"].body if isinstance(n, ast.FunctionDef)}
    if not {"_read", "len_payload"} <= methods:
        raise SystemExit("extract: FrameHeader lacks _read or len_payload")
    read = next(n for n in nested["FrameHeader"].body if getattr(n, "name", "") == "_read")
    # The three optional header fields are three sibling ifs, not nested ones.
    ifs = [n for n in read.body if isinstance(n, ast.If)]
    if len(ifs) != 3:
        raise SystemExit(f"extract: FrameHeader._read has {len(ifs)} top-level ifs, expected 3")
    root_read = next(n for n in roots[0].body if getattr(n, "name", "") == "_read")
    loops = [n for n in ast.walk(root_read) if isinstance(n, ast.While)]
    if len(loops) != 1 or not any(isinstance(s, ast.AugAssign) for s in loops[0].body):
        raise SystemExit("extract: Websocket._read lacks its repeat-until loop")
    compile(src, "websocket_seed.py", "exec")


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        src = extract(f.read())
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(src)


if __name__ == "__main__":
    main()
