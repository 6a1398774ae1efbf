"""Write README.md from nbs/index.ipynb (Quarto, which nbdev_readme needs, cannot be installed here).
Markdown cells are copied as they are; code cells become ```python blocks without their `#|` directives;
cells marked `#| hide` are left out; images the notebook shows from nbs/images/ keep working from the root. `python .ci/readme.py --check` exits 1 when README.md is not current."""
import sys, nbformat
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def render(nb_path=root / "nbs" / "index.ipynb") -> str:
    "The README text for the index notebook."
    parts = []
    for cell in nbformat.read(nb_path, as_version=4).cells:
        src = cell.source.strip()
        lines = src.splitlines()
        directives = [l.replace(" ", "") for l in lines if l.startswith("#|")]
        if "#|hide" in directives or not src: continue
        if cell.cell_type == "markdown": parts.append(src.replace("](images/", "](nbs/images/"))   # image paths from the repository root
        elif cell.cell_type == "code":
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
            if code: parts.append(f"```python\n{code}\n```")
    return "<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->\n\n" + "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    text, readme = render(), root / "README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit("README.md is not current: run `python .ci/readme.py` and commit it")
    else: readme.write_text(text)
