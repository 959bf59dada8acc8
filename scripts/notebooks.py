#!/usr/bin/env python3
"""Write notebooks/<name>.ipynb from examples/notebook_<name>.rs.

The body of the example's `main` is split into code cells at `// ---` lines; a first
cell adds the crate with evcxr's `:dep`. `tests/notebooks.rs` checks that every notebook
equals what this script would write, so the notebooks only call library code that
compiles (the examples are built by `cargo test --examples` and clippy).
"""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def cells_of(example: str) -> list[str]:
    body = example.split("fn main() -> Result<(), Box<dyn std::error::Error>> {\n", 1)[1]
    body = body.rsplit("    Ok(())\n}", 1)[0]
    cells = []
    for part in re.split(r"^    // ---\n", body, flags=re.M):
        lines = [l[4:] if l.startswith("    ") else l for l in part.rstrip("\n").split("\n")]
        text = "\n".join(lines).strip("\n")
        if text:
            cells.append(text)
    return cells


def notebook(name: str, doc: str, cells: list[str]) -> dict:
    # nbformat 4.5 wants a stable, unique id per cell: the notebook name and position.
    def code(i: int, src: str) -> dict:
        return {"cell_type": "code", "execution_count": None, "id": f"{name}-{i}", "metadata": {},
                "outputs": [], "source": src.splitlines(keepends=True)}
    sources = [':dep scrobust = { path = ".." }'] + cells
    return {
        "cells": [{"cell_type": "markdown", "id": f"{name}-title", "metadata": {},
                   "source": [f"# {name}\n", "\n", doc + "\n"]}]
                 + [code(i + 1, c) for i, c in enumerate(sources)],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"file_extension": ".rs", "mimetype": "text/rust", "name": "Rust",
                              "pygment_lexer": "rust", "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def main() -> None:
    for ex in sorted((ROOT / "examples").glob("notebook_*.rs")):
        name = ex.stem.removeprefix("notebook_")
        text = ex.read_text()
        doc = text.splitlines()[0].split(": ", 1)[1] if ": " in text.splitlines()[0] else name
        nb = notebook(name, doc, cells_of(text))
        out = ROOT / "notebooks" / f"{name}.ipynb"
        out.write_text(json.dumps(nb, indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
