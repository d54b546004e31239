#!/usr/bin/env python3
"""Every code block in README.md is either run by the test command or marked
as a fragment.

A block is *included* when the line before it is ``<!-- include: PATH -->``:
its text must equal the file PATH (relative to the repository root) exactly,
and tests/run-readme.sh runs that file. A block is a *fragment* when the line
before it is ``<!-- fragment -->`` (optionally ``<!-- fragment: why -->``):
shell commands, output, formats. Any other block fails this check, so a
snippet can no longer rot unnoticed.

Usage: tests/check_readme.py [--sync] [README.md]   (prints the included paths)
  --sync  rewrite each included block from its file (after editing an example)
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(```+)(\S*)")
INCLUDE = re.compile(r"^<!--\s*include:\s*(\S+)\s*-->$")
FRAGMENT = re.compile(r"^<!--\s*fragment(:[^>]*)?\s*-->$")


def blocks(lines):
    """Yields (line number, marker line, language, body) for each fence."""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, fence, lang = i, m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = lines[k].strip() if k >= 0 else ""
        yield start + 1, marker, lang, "".join(lines[start + 1 : j])
        i = j + 1


def sync(readme: pathlib.Path) -> None:
    """Replaces every included block's text with its file's."""
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        m = FENCE.match(lines[i])
        k = len(out) - 2
        while k >= 0 and not out[k].strip():
            k -= 1
        inc = INCLUDE.match(out[k].strip()) if m and k >= 0 else None
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith(m.group(1)):
            j += 1
        out.extend([(ROOT / inc.group(1)).read_text(encoding="utf-8")] if inc else lines[i + 1 : j])
        out.append(lines[j] if j < len(lines) else "")
        i = j + 1
    readme.write_text("".join(out), encoding="utf-8")


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--sync"]
    readme = pathlib.Path(args[0]) if args else ROOT / "README.md"
    if "--sync" in sys.argv:
        sync(readme)
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    errors, included, fragments = [], [], 0
    for line, marker, lang, body in blocks(lines):
        inc = INCLUDE.match(marker)
        if inc:
            path = ROOT / inc.group(1)
            if not path.is_file():
                errors.append(f"README.md:{line}: included file {inc.group(1)} does not exist")
            elif path.read_text(encoding="utf-8") != body:
                errors.append(f"README.md:{line}: block differs from {inc.group(1)} (paste the file verbatim)")
            else:
                included.append(inc.group(1))
        elif FRAGMENT.match(marker):
            fragments += 1
        else:
            errors.append(f"README.md:{line}: ```{lang} block is neither <!-- include: path --> nor <!-- fragment -->")
    for e in errors:
        print(e, file=sys.stderr)
    print(f"README blocks: {len(included)} included and run, {fragments} fragments, {len(errors)} unchecked")
    for p in included:
        print(f"  include {p}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
