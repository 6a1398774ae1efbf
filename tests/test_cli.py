"""Tests of the `cellnet3d` command line.

Each `python -m cellnet3d` process pays for importing torch (seconds on a busy 2-core machine), so the
subprocess tests cover what only a real process shows — the entry point, exit codes, stdout/stderr, a
training run end to end — and the long lists of cases go through `main()` in this process."""
import contextlib, importlib.util, io, json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cellnet3d import cli as cli_module  # noqa: E402

COMMANDS = ("train", "doctor", "config", "eval", "ask", "embed", "bench")


def cli(*args, timeout=300):
    "Run `python -m cellnet3d ARGS` in a fresh process; return the CompletedProcess (text)."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cellnet3d", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_main(*args):
    "Exit code, stdout and stderr of `cli.main(args)` in this process."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = cli_module.main([str(a) for a in args])
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


def last_error_line(code, stderr, expected=2):
    "Check the exit code and that stderr ends in one error line, no traceback; return that line."
    assert code == expected, (code, stderr)
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    "A small question/answer JSONL file, so training does not embed the whole corpus."
    f = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"{i} plus {i} is {2 * i}."} for i in range(30)]
    rows += [{"question": f"Which colour is thing number {i}?", "answer": f"Thing {i} is {c}."} for i, c in enumerate(["red", "blue", "green"] * 5)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


# --- in a real process ---------------------------------------------------------------------------------

def test_process_help_and_usage_errors():
    p = cli("--help")
    assert p.returncode == 0 and all(c in p.stdout for c in COMMANDS), p.stderr
    p = cli("train", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: cellnet3d train")
    for flag in ("--preset", "--task", "--teacher", "--data", "--epochs", "--batch-size", "--lr", "--out", "--device", "--set", "--resume"):
        assert flag in p.stdout, flag
    p = cli("train", "--epochs", "two")
    assert last_error_line(p.returncode, p.stderr) == "cellnet3d train: error: argument --epochs: invalid int value: 'two'"
    p = cli("train", "--set", "steps")
    assert p.stderr == "cellnet3d train: error: --set 'steps' must look like key=value, e.g. --set steps=7\n" and p.returncode == 2
    p = cli("config", "validate", "--preset", "seed", "--set", "steps=5")
    assert "use steps >= 7" in last_error_line(p.returncode, p.stderr) and p.stderr.count("\n") == 1


def test_process_config_show_and_validate(tmp_path):
    p = cli("config", "show", "--preset", "tiny", "--set", "steps=3")
    assert p.returncode == 0, p.stderr
    cfg = json.loads(p.stdout)
    assert cfg["lattice"]["dims"] == [4, 4, 4] and cfg["model"]["steps"] == 3
    f = tmp_path / "cfg.json"; f.write_text(p.stdout)
    p = cli("config", "validate", f)
    assert p.returncode == 0 and p.stdout.startswith(f"ok: {f} is a valid config") and "reach" in p.stdout, p.stderr


def test_process_doctor(pairs_file, tmp_path):
    p = cli("doctor", "--preset", "tiny", "--task", "dialogue", "--data", pairs_file)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    assert [l.split()[0] for l in lines[:5]] == ["ok"] * 5 and lines[-1] == "all checks passed", p.stdout
    for word in ("torch", "teacher", "45 pairs", "tiers of a central cell 6/12/11", "reach", "parameters"):
        assert word in p.stdout, word
    txt = tmp_path / "single.txt"; txt.write_text("one sentence\nanother sentence\n")
    p = cli("doctor", "--preset", "tiny", "--task", "dialogue", "--data", txt)
    assert p.returncode == 1
    fails = [l for l in p.stdout.splitlines() if l.startswith("FAIL")]
    assert len(fails) == 1 and "needs question/answer pairs" in fails[0], p.stdout


def test_process_train_tiny_then_resume(pairs_file, tmp_path):
    run = tmp_path / "run"
    p = cli("train", "--preset", "tiny", "--task", "dialogue", "--data", pairs_file, "--epochs", "2", "--batch-size", "8",
            "--out", run, "--device", "cpu", "--set", "log_every=2", "--log", "tensorboard")
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1       # --log tensorboard, beside metrics.jsonl
    for f in ("config.json", "model.safetensors", "last.safetensors", "trainer_state.pt", "metrics.jsonl", "curves.png", "results.json"):
        assert (run / f).is_file(), f
    assert "epoch 2/2" in p.stderr + p.stdout and f"run folder: {run}" in p.stdout
    res = json.loads((run / "results.json").read_text())
    assert res["epochs"] == 2 and -1 <= res["test_cosine"] <= 1
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["task"] == "dialogue" and saved["train"]["data"] == str(pairs_file) and saved["train"]["log_every"] == 2
    # a finished run resumed with more epochs continues from where it stopped
    p = cli("train", "--resume", run, "--epochs", "3", "--device", "cpu", "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads((run / "results.json").read_text())["epochs"] == 3
    epochs = [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
    assert epochs == [1, 2, 3]
    # and the same folder may not be used for a new run, nor resumed with another model
    code, out, err = run_main("train", "--preset", "tiny", "--out", run, "--data", pairs_file)
    assert "already holds a run" in last_error_line(code, err)
    code, out, err = run_main("train", "--resume", run, "--set", "steps=3")
    assert "a resumed run keeps its config; ['steps'] differ" in last_error_line(code, err)
    code, out, err = run_main("train", "--resume", run, "--preset", "tiny")
    assert "--resume continues a run with its own config" in last_error_line(code, err)


# --- in this process -------------------------------------------------------------------------------------

def test_help_of_every_command():
    for c in COMMANDS:
        code, out, err = run_main(c, "--help")
        assert code == 0 and out.startswith(f"usage: cellnet3d {c}"), (c, err)


@pytest.mark.parametrize("args, message", [
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    ((), "the following arguments are required: COMMAND"),
    (("train", "--device", "tpu"), "argument --device: invalid choice: 'tpu'"),
    (("train", "--preset", "huge"), "argument --preset: invalid choice: 'huge'"),
    (("train", "--task", "translate"), "argument --task: invalid choice: 'translate'"),
    (("train", "--set", "stepz=3"), "unknown config keys ['stepz']"),
    (("train", "--lr", "-1"), "lr (-1.0) must be a finite number above 0"),
    (("train", "--preset", "tiny", "--config", "x.json"), "give either --config FILE or --preset NAME, not both"),
    (("train", "--config", "/nonexistent/cfg.json"), "does not exist"),
    (("train", "--resume", "/nonexistent/run"), "does not exist"),
    (("config", "validate", "--set", "dims=[8,8]"), "dims ((8, 8)) must be three integers"),
    (("config", "show", "cfg.json", "--preset", "tiny"), "not both"),
    (("ask", "somewhere", "hi", "--k", "x"), "argument --k: invalid int value: 'x'"),
    (("ask", "somewhere", "hi", "--k", "0"), "--k (0) must be at least 1"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    code, out, err = run_main(*args)
    assert message in last_error_line(code, err)


def test_config_validate_refuses_bad_files(tmp_path):
    f = tmp_path / "cfg.json"
    cfg = json.loads(run_main("config", "show", "--preset", "tiny")[1])
    cfg["lattice"]["local_distance_ratio"] = 0.9
    f.write_text(json.dumps(cfg))
    assert "local_distance_ratio (0.9) must be below functional_distance_ratio" in last_error_line(*run_main("config", "validate", f)[::2])
    f.write_text("{not json")
    assert "is not valid JSON" in last_error_line(*run_main("config", "validate", f)[::2])


def test_doctor_reports_a_missing_teacher(tmp_path):
    code, out, err = run_main("doctor", "--preset", "tiny", "--teacher", tmp_path / "no_such_teacher")
    assert code == 1
    fails = [l for l in out.splitlines() if l.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL  teacher"), out


@pytest.mark.parametrize("module, args", [("evaluate", ("eval", "run")), ("decoder", ("ask", "run", "hello")), ("bench", ("bench",))])
def test_missing_later_module_is_reported(module, args, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == f"cellnet3d.{module}" else real(name, *a))
    code, out, err = run_main(*args)
    assert code == 1 and err == f"cellnet3d {args[0]}: not available: this command needs cellnet3d.{module}, which is not part of this installation\n"


# --- compose: train, the table, embed -------------------------------------------------------------------

def test_compose_train_table_and_embed(pairs_file, tmp_path):
    "A compose run on a file of pairs: its table has the rivals and the pair MRR; `embed` writes unit rows and refuses bad input."
    import numpy as np
    run = tmp_path / "compose"
    code, out, err = run_main("train", "--preset", "tiny", "--task", "compose", "--data", pairs_file, "--epochs", "1", "--out", run, "--quiet")
    assert code == 0, err
    for row in ("student (cube, back face 4×4×24 = 384)", "mean of tokens + ridge (384) = linear start", "linear map trained like the cube",
                "bag-of-tokens MLP", "1D conv over tokens", "transformer (same params)", "sentences/s"):
        assert row in out, (row, out)
    texts = tmp_path / "texts.txt"
    texts.write_text("What is 3 plus 3?\nThing 2 is green.\nWhat is 3 plus 3?\n")
    p = cli("embed", run, "--texts", texts, "--out", tmp_path / "emb.npy")
    assert p.returncode == 0 and "3 texts ->" in p.stdout, p.stderr
    emb = np.load(tmp_path / "emb.npy", allow_pickle=False)
    assert emb.shape == (3, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5) and np.allclose(emb[0], emb[2], atol=1e-6)
    (tmp_path / "gap.txt").write_text("one\n\nthree\n")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "none.txt").write_text("")
    for name, phrase in (("gap.txt", "empty line(s), the first at line(s) [2]"), ("latin.txt", "is not UTF-8 text"), ("none.txt", "is empty")):
        line = last_error_line(*run_main("embed", run, "--texts", tmp_path / name, "--out", tmp_path / "x.npy")[::2])
        assert phrase in line, line
    line = last_error_line(*run_main("embed", run, "--texts", texts, "--out", tmp_path / "x.pt")[::2])
    assert "must end in .npy" in line, line
    other = tmp_path / "autoencode"
    assert run_main("train", "--preset", "tiny", "--data", pairs_file, "--epochs", "1", "--out", other, "--quiet")[0] == 0
    line = last_error_line(*run_main("embed", other, "--texts", texts, "--out", tmp_path / "x.npy")[::2])
    assert "was trained for task 'autoencode'" in line and "only compose runs embed texts" in line, line
    assert not (tmp_path / "x.npy").exists()


def test_wordnet_missing_is_one_line_and_no_run_folder(tmp_path):
    line = last_error_line(*run_main("train", "--preset", "tiny", "--task", "compose", "--data", f"wordnet:{tmp_path / 'nowhere'}",
                                     "--out", tmp_path / "run")[::2])
    assert "wordnet-base" in line and "apt-get install -y wordnet-base" in line, line
    assert not (tmp_path / "run").exists()
