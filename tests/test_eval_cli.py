"Process tests of `cellnet3d eval` and `cellnet3d ask`: a tiny run trained by `cellnet3d train`, then evaluated and asked."
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("student (cube)", "mean vector", "PCA-16", "SIM (the question)", "rank-16 regression", "linear start (lattice = identity)",
        "rank-16 linear map trained like the cube", "surface MLP (same params)", "MLP (same params)")


def cli(*args, cache, timeout=600):
    "Run `python -m cellnet3d ARGS` offline with its own embedding cache; return the CompletedProcess (text)."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CELLNET3D_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cellnet3d", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def student_gain(ev):
    "MRR of the student minus that of its linear start."
    return ev["models"]["student"]["mrr"] - ev["models"]["start"]["mrr"]


def table_rows(stdout):
    "{row label: [cells]} of the results table in `stdout`."
    lines = stdout.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("model ") and "MRR" in l)
    rows = {}
    for l in lines[head + 2:]:
        label = next((r for r in ROWS if l.startswith(r)), None)
        if label is None: break
        rows[label] = l[len(label):].split()
    return lines[head].split(), rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "(run folder, cache folder, train stdout) of a `tiny` dialogue run on a small JSONL file."
    d = tmp_path_factory.mktemp("evalcli")
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"{i} plus {i} is {2 * i}."} for i in range(20)]
    rows += [{"question": f"What colour is the {t}?", "answer": f"The {t} is {c}."}
             for t, c in (("sky", "blue"), ("grass", "green"), ("sun", "yellow"), ("snow", "white"), ("night", "black"))]
    (d / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = d / "run"
    p = cli("train", "--preset", "tiny", "--task", "dialogue", "--data", d / "qa.jsonl", "--epochs", "2",
            "--out", run, "--device", "cpu", "--quiet", cache=d / "cache")
    assert p.returncode == 0, p.stdout + p.stderr
    return run, d / "cache", p.stdout


def test_train_ends_with_the_table(trained):
    run, _, out = trained
    head, rows = table_rows(out)
    assert head[:2] == ["model", "params"] and "dec@1" in head
    assert list(rows) == list(ROWS), out
    assert "evaluation" in json.loads((run / "results.json").read_text())


def test_eval_prints_every_model_and_writes_results(trained):
    run, cache, _ = trained
    (run / "results.json").write_text(json.dumps({k: v for k, v in json.loads((run / "results.json").read_text()).items() if k != "evaluation"}))
    p = cli("eval", run, "--device", "cpu", cache=cache)
    assert p.returncode == 0, p.stdout + p.stderr
    head, rows = table_rows(p.stdout)
    assert list(rows) == list(ROWS)
    assert "dialogue" in p.stdout.splitlines()[0] and "k = 16" in p.stdout.splitlines()[0]
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert set(ev["models"]) == {"student", "mean", "pca", "sim", "regression", "start", "linear", "surface_mlp", "mlp"}
    assert ev["models"]["start"]["gain"] == 0 and ev["models"]["student"]["gain"] == student_gain(ev)
    assert ev["n"]["test"] >= 1 and ev["n"]["bank"] == 25
    student = ev["models"]["student"]
    assert -1 <= student["cosine"] <= 1 and 0 <= student["recall@1"] <= student["recall@10"] <= 1 and 0 < student["mrr"] <= 1
    # the printed numbers are the stored ones
    assert rows["student (cube)"][1] == f"{student['cosine']:.3f}"
    assert abs(ev["params"]["mlp"] - ev["params"]["student"]) / ev["params"]["student"] < 0.05
    assert abs(ev["params"]["surface_mlp"] - ev["params"]["student"]) / ev["params"]["student"] < 0.05


def test_ask_prints_k_answers_and_the_teacher(trained):
    run, cache, _ = trained
    p = cli("ask", run, "What colour is the sky?", "--k", "3", cache=cache)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "question: What colour is the sky?"
    assert "top 3 of 25 corpus answers" in lines[1]
    answers = [l.split("  ", 2)[2] for l in lines[2:5]]
    assert all(a.endswith(".") for a in answers) and len(set(answers)) == 3
    scores = [float(l.split()[1]) for l in lines[2:5]]
    assert scores == sorted(scores, reverse=True)
    assert lines[5].startswith("teacher alone") and lines[5].endswith("The sky is blue."), lines[5]


@pytest.mark.parametrize("args, message", [
    (("eval", "{tmp}"), "is not a finished run folder"),
    (("ask", "{tmp}", "hello"), "is not a finished run folder"),
    (("ask", "{run}", "   "), "must be a non-empty string"),
    (("ask", "{run}", "hello", "--k", "0"), "--k (0) must be at least 1"),
])
def test_errors_are_one_line(trained, tmp_path, args, message):
    run, cache, _ = trained
    p = cli(*[a.format(tmp=tmp_path, run=run) for a in args], cache=cache)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and message in p.stderr.strip().splitlines()[-1], p.stderr
