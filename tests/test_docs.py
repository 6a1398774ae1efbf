"""The documents read: every Markdown table in README.md and in the notebooks' prose has a header row and a separator row,
with as many cells in every row as in its header; and README.md gives the two commands that .ci/run runs."""
import re
from pathlib import Path
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def cells(row:str) -> list:
    "The cells of a table row: split at `|` outside backticks and not escaped."
    out, cur, code = [], "", False
    for i, ch in enumerate(row.strip()):
        if ch == "`": code = not code
        if ch == "|" and not code and (i == 0 or row.strip()[i - 1] != "\\"): out.append(cur); cur = ""
        else: cur += ch
    out.append(cur)
    return [c.strip() for c in out[1:-1]]        # the text before the first and after the last pipe is not a cell


def tables(markdown:str) -> list:
    "(first line number, lines) of every table (consecutive lines starting with `|`) outside fenced code."
    found, block, fenced = [], [], False
    for n, line in enumerate(markdown.splitlines() + [""], 1):
        if line.lstrip().startswith("```"): fenced = not fenced
        if not fenced and line.startswith("|"): block.append((n, line)); continue
        if block: found.append((block[0][0], [l for _, l in block])); block = []
    return found


def table_problems(markdown:str, where:str) -> list:
    problems = []
    for start, lines in tables(markdown):
        if len(lines) < 2 or not SEPARATOR.match(lines[1].strip()):
            problems.append(f"{where}:{start}: no header and separator row before {lines[0][:60]!r}"); continue
        width = len(cells(lines[0]))
        for k, line in enumerate(lines):
            if len(cells(line)) != width:
                problems.append(f"{where}:{start + k}: {len(cells(line))} cells, the header has {width}: {line[:60]!r}")
    return problems


def test_table_checker_catches_what_it_should():
    good = "text\n\n| a | b |\n|---|---|\n| 1 | `x | y` |\n\n```\n| no header in code |\n```\n"
    assert table_problems(good, "good") == []
    assert len(table_problems("| 1 | 2 |\n| 3 | 4 |\n", "bad")) == 1                     # no header
    assert len(table_problems("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n", "bad")) == 1        # a row too wide
    assert len(table_problems("| a | b | c |\n|---|---|\n| 1 | 2 | 3 |\n", "bad")) == 1    # separator too short


DOCS = [ROOT / "README.md", *sorted((ROOT / "nbs").glob("*.ipynb"))]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_markdown_tables_have_headers(path):
    if path.suffix == ".md": texts = [(path.name, path.read_text())]
    else: texts = [(f"{path.name} cell {i}", c.source) for i, c in enumerate(nbformat.read(path, as_version=4).cells) if c.cell_type == "markdown"]
    problems = [p for where, text in texts for p in table_problems(text, where)]
    assert not problems, "\n".join(problems)


def test_readme_gives_the_two_commands_ci_runs():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    lines = readme.splitlines()
    assert "pip install torch==2.13.0 -e . && cellnet3d train" in lines
    assert any(l.startswith('pip install torch==2.13.0 -e ".[dev]" && ') and "pytest tests" in l for l in lines)
    assert 'step "tests"' in ci and 'step "main job"' in ci and "CELLNET3D_REQUIRE_BROWSER=1" in ci
