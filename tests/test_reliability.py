"""Reliability of the command line and of run folders (issue 12).

- A table of every way a user can get a command wrong: the command, its exit code, a phrase of its one-line
  message, and the state of the folder afterwards (nothing left behind, unchanged, or usable again).
- Faults on real processes: SIGKILL inside an epoch, at an epoch boundary and half-way through a checkpoint
  write, SIGINT and SIGTERM; the run resumed after each ends bit-identical to an uninterrupted one.
- Two processes training into one folder: the second is refused, the first completes untouched.

Everything uses the tiny preset on 120 random 24-d embeddings, so no teacher is loaded except where a case is
about the teacher."""
import contextlib, hashlib, io, json, os, pickle, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cellnet3d import cli as cli_module  # noqa: E402
from cellnet3d.trainer import train  # noqa: E402
from cellnet3d.run import read_state, read_metrics, LOCK_NAME  # noqa: E402
from cellnet3d.config import CellNetConfig  # noqa: E402

N_EMB, EPOCHS, EVERY = 120, 3, 4             # 96 training rows at batch 8: 12 steps an epoch, 36 in all, a checkpoint every 4
TINY = ("--preset", "tiny", "--epochs", str(EPOCHS), "--device", "cpu", "--quiet", "--set", "log_every=1")


def run_main(*args, cwd=None):
    "Exit code, stdout and stderr of `cli.main(args)` in this process (optionally from another directory)."
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd: os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: code = cli_module.main([str(a) for a in args])
            except SystemExit as e: code = e.code
    finally: os.chdir(old)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def no_evaluation():
    "`train` then prints the run's own results instead of fitting the evaluation's baselines (seconds each, and not what these tests are about)."
    import importlib.util
    real = importlib.util.find_spec
    with pytest.MonkeyPatch.context() as m:
        m.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cellnet3d.evaluate" else real(name, *a))
        yield


def snapshot(folder) -> dict:
    "{name: sha256} of the files in `folder` (the lock file aside: every writer records its pid there); None if there is no folder."
    folder = Path(folder)
    if not folder.exists(): return None
    if folder.is_file(): return {"": hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_NAME}


def finite_state(path) -> bool:
    "True if every tensor of a trainer_state.pt's model is finite."
    return all(bool(v.isfinite().all()) for v in read_state(path)["model"].values())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    "A folder with the data files and one finished tiny run (`base`) that cases copy and damage."
    d = tmp_path_factory.mktemp("reliability")
    x = torch.nn.functional.normalize(torch.randn(N_EMB, 24, generator=torch.Generator().manual_seed(0)), dim=-1)
    save_file({"embeddings": x}, str(d / "emb.safetensors"))
    (d / "small.txt").write_text("one sentence\nanother sentence\n")
    (d / "notes.bin").write_bytes(b"\x00\x01 not a data file")
    with no_evaluation(): code, out, err = run_main("train", *TINY, "--epochs", "2", "--data", d / "emb.safetensors", "--out", d / "base", cwd=d)
    assert code == 0, err
    return d


# --- damaging a copy of the finished run -----------------------------------------------------------------------

def _copy(work, name):
    dst = work / "cases" / name
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(work / "base", dst)
    return dst

class Bomb:
    "Unpickled, it would create the file `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, "w"))

def _pickle_bomb(path, marker, torch_format=True):
    "A checkpoint (or a raw pickle) that would create `marker` if anything unpickled it."
    if torch_format: torch.save({"model": Bomb(marker)}, path)
    else: path.write_bytes(pickle.dumps({"model": Bomb(marker)}))

def _resave(run, tensors=None, **meta):
    "Rewrite run/model.safetensors with other tensors or other metadata."
    f = run / "model.safetensors"
    from safetensors import safe_open
    with safe_open(str(f), framework="pt") as h: old = h.metadata()
    save_file(tensors if tensors is not None else load_file(str(f)), str(f), metadata={**old, **meta})

def damage(work, name, how):
    "A copy of the base run, damaged as `how` says; returns its folder."
    run = _copy(work, name)
    if how == "cut weights": (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:300])
    elif how == "renamed keys":
        sd = load_file(str(run / "model.safetensors")); sd["renamed.weight"] = sd.pop(sorted(sd)[0]); _resave(run, sd)
    elif how == "wrong shape":
        sd = load_file(str(run / "model.safetensors")); k = sorted(sd)[0]; sd[k] = torch.zeros(3, 3); _resave(run, sd)
    elif how == "teacher_dim":  _resave(run, teacher_dim="twenty-four")
    elif how == "meta config": _resave(run, config='{"model": {"steps": 0}}')
    elif how == "other config":
        c = json.loads((run / "config.json").read_text()); c["lattice"]["dims"] = [5, 5, 5]
        (run / "config.json").write_text(json.dumps(c))
    elif how == "pickle state": _pickle_bomb(run / "trainer_state.pt", run / "PWNED")
    elif how == "cut state": (run / "trainer_state.pt").write_bytes((run / "trainer_state.pt").read_bytes()[:1000])
    elif how == "cut results": (run / "results.json").write_text((run / "results.json").read_text()[:60])
    elif how == "relative data":
        c = json.loads((run / "config.json").read_text()); c["train"]["data"] = "emb.safetensors"
        (run / "config.json").write_text(json.dumps(c))
    elif how == "orphan": (run / ".trainer_state.tmp99999.pt").write_bytes(b"half a checkpoint")
    else: raise ValueError(how)
    return run


# --- the table ---------------------------------------------------------------------------------------------------
# (id, argv with {data} {small} {bin} {work} {run} placeholders, how to damage a copy of the base run into {run}
#  (or None: {run} is a new path), exit code, phrase of the last stderr line, state of {run} afterwards:
#  "absent" nothing was created, "unchanged" byte for byte, "resumable"/"reusable" a command that works follows.)
CASES = [
    # refused inputs leave nothing behind
    ("data missing", ["train", *TINY, "--data", "{work}/nothere.jsonl", "--out", "{run}"], None, 2, "data file '{work}/nothere.jsonl' does not exist", "absent"),
    ("data unknown format", ["train", *TINY, "--data", "{bin}", "--out", "{run}"], None, 2, "has unknown format '.bin'", "absent"),
    ("data too small, named", ["train", *TINY, "--data", "{small}", "--out", "{run}"], None, 2, "small.txt: the data has 2 distinct", "absent"),
    ("teacher missing", ["train", *TINY, "--teacher", "{work}/noteacher", "--data", "{small}", "--out", "{run}"], None, 2,
     "does not exist; use the teacher 'bundled' (--teacher bundled", "absent"),
    ("config refused", ["train", *TINY, "--lr", "-1", "--out", "{run}"], None, 2, "lr (-1.0) must be a finite number above 0", "absent"),
    ("--out is a file", ["train", *TINY, "--data", "{data}", "--out", "{small}"], None, 2, "is a file, not a folder", "unchanged small"),
    ("resume: no folder", ["train", "--resume", "{run}"], None, 2, "the folder does not exist", "absent"),
    ("resume: no config.json", ["train", "--resume", "{work}"], None, 2, "holds no config.json, so no run was started there", "unchanged work"),
    # a folder that holds a run
    ("new run into a run", ["train", *TINY, "--data", "{data}", "--out", "{run}"], "orphan", 2,
     "already holds a run (it has a checkpoint); continue it with `cellnet3d train --resume", "unchanged"),
    ("resume: --epochs below done", ["train", "--resume", "{run}", "--epochs", "1"], "orphan", 2,
     "has already trained 2 epoch(s); --epochs 1 must be at least 2", "unchanged"),
    ("resume: model change", ["train", "--resume", "{run}", "--set", "steps=3"], "orphan", 2, "a resumed run keeps its config; ['steps'] differ", "unchanged"),
    ("resume: --preset", ["train", "--resume", "{run}", "--preset", "tiny"], "orphan", 2, "--resume continues a run with its own config", "unchanged"),
    ("resume: relative data in an old config", ["train", "--resume", "{run}"], "relative data", 2,
     "the run's data file 'emb.safetensors' (from '{run}/config.json') does not exist", "unchanged"),
    ("eval: relative data in an old config", ["eval", "{run}", "--device", "cpu"], "relative data", 2,
     "the run's data file 'emb.safetensors' (from '{run}/config.json') does not exist, relative to the current directory", "unchanged"),
    ("ask: relative data in an old config", ["ask", "{run}", "hi"], "relative data", 2, "the run's data file 'emb.safetensors' (from", "unchanged"),
    # damaged files: eval, ask, resume
    ("eval: weights cut short", ["eval", "{run}", "--device", "cpu"], "cut weights", 2, "model.safetensors' is not a readable safetensors file", "unchanged"),
    ("ask: weights cut short", ["ask", "{run}", "hello"], "cut weights", 2, "model.safetensors' is not a readable safetensors file", "unchanged"),
    ("eval: renamed tensors", ["eval", "{run}", "--device", "cpu"], "renamed keys", 2, "do not fit the config in its own metadata", "unchanged"),
    ("eval: tensor of the wrong size", ["eval", "{run}", "--device", "cpu"], "wrong shape", 2, "do not fit the config in its own metadata", "unchanged"),
    ("eval: bad teacher_dim", ["eval", "{run}", "--device", "cpu"], "teacher_dim", 2, "the teacher_dim in the metadata of", "unchanged"),
    ("eval: bad config in the weights", ["eval", "{run}", "--device", "cpu"], "meta config", 2, "the config in the metadata of", "unchanged"),
    ("eval: config.json of another run", ["eval", "{run}", "--device", "cpu"], "other config", 2,
     "model.safetensors' was saved with dims = [4, 4, 4], but '{run}/config.json' says dims = [5, 5, 5]", "unchanged"),
    ("ask: config.json of another run", ["ask", "{run}", "hello"], "other config", 2, "was saved with dims = [4, 4, 4]", "unchanged"),
    ("eval: pickled trainer state", ["eval", "{run}", "--device", "cpu"], "pickle state", 2, "holds pickled Python objects, which are never loaded", "unchanged"),
    ("resume: pickled trainer state", ["train", "--resume", "{run}"], "pickle state", 2, "holds pickled Python objects, which are never loaded", "unchanged"),
    ("resume: trainer state cut short", ["train", "--resume", "{run}"], "cut state", 2, "is not a readable trainer state", "unchanged"),
    ("eval: results.json cut short", ["eval", "{run}", "--device", "cpu"], "cut results", 2, "results.json' is not valid JSON", "unchanged"),
    # bench
    ("bench --sizes 0", ["bench", "--sizes", "0"], None, 2, "--sizes 0: a cube edge must be at least 2", "absent"),
    ("bench --sizes 1", ["bench", "--sizes", "1"], None, 2, "--sizes 1: a cube edge must be at least 2", "absent"),
    ("bench --sizes -3", ["bench", "--sizes", "-3"], None, 2, "--sizes -3: a cube edge must be at least 2", "absent"),
    # commands that work where they used to be dead ends
    ("resume: --epochs = done", ["train", "--resume", "{run}", "--epochs", "2", "--quiet"], "orphan", 0, None, "resumable"),
]
if not torch.cuda.is_available():
    CASES += [("--device cuda without CUDA", ["train", *TINY, "--device", "cuda", "--data", "{data}", "--out", "{run}"], None, 2,
               "asks for CUDA, but no CUDA device is available", "absent"),
              ("eval --device cuda without CUDA", ["eval", "{run}", "--device", "cuda"], "orphan", 2, "asks for CUDA", "unchanged"),
              ("bench --device cuda without CUDA", ["bench", "--device", "cuda"], None, 2, "--device cuda: no CUDA device is available here", "absent")]


@pytest.mark.parametrize("name, argv, how, code, phrase, state", CASES, ids=[c[0] for c in CASES])
def test_case(work, name, argv, how, code, phrase, state):
    run = damage(work, name.replace(" ", "_").replace("/", "_"), how) if how else work / "cases" / name.replace(" ", "_")
    if how is None and run.exists(): shutil.rmtree(run)
    fill = lambda s: s.format(data=work / "emb.safetensors", small=work / "small.txt", bin=work / "notes.bin", work=work, run=run)
    watched = {"unchanged small": work / "small.txt", "unchanged work": work}.get(state, run)
    before = snapshot(watched)
    (work / "cases").mkdir(exist_ok=True)
    with no_evaluation() if argv[0] == "train" else contextlib.nullcontext():
        got, out, err = run_main(*map(fill, argv), cwd=work / "cases")      # where no data file lies: relative paths do not resolve
    assert got == code, (got, out[-2000:], err[-2000:])
    assert "Traceback" not in err, err
    if phrase:
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"cellnet3d {argv[0]}: error: ") and fill(phrase) in last, last
    if state == "absent": assert not run.exists() and not (work / "cases" / "runs").exists()
    elif state.startswith("unchanged"): assert snapshot(watched) == before
    elif state == "resumable": assert read_state(run / "trainer_state.pt")["finished"] and (run / "results.json").is_file()
    assert not (run / "PWNED").exists()                       # no pickle was ever run
    if how == "orphan" and code == 0: assert not (run / ".trainer_state.tmp99999.pt").exists()   # cleaned by the next writer


def test_default_run_folder_is_not_made_for_refused_input(work, tmp_path):
    code, out, err = run_main("train", *TINY, "--data", tmp_path / "missing.jsonl", cwd=tmp_path)
    assert code == 2 and not (tmp_path / "runs").exists(), err


def test_teacher_holding_a_pickle_is_refused_and_not_run(work, tmp_path):
    from cellnet3d.teacher import bundled_teacher_path
    t = tmp_path / "teacher"; t.mkdir()
    for f in bundled_teacher_path().iterdir():
        if f.is_file() and f.suffix not in (".safetensors", ".bin"): shutil.copy(f, t / f.name)
    _pickle_bomb(t / "pytorch_model.bin", tmp_path / "PWNED", torch_format=False)
    code, out, err = run_main("train", *TINY, "--teacher", t, "--data", work / "small.txt", "--out", tmp_path / "run")
    assert code == 2 and "holds its weights as a pickle (.bin), which is never loaded" in err.strip().splitlines()[-1], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "PWNED").exists()


def test_diverging_run_stops_before_writing_nan(work, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_main("train", *TINY, "--lr", "1e6", "--data", work / "emb.safetensors", "--out", run)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "training diverged at step 2 (epoch 1): " in last and "at learning rate" in last, err
    assert "loss term" in last or "the gradient norm is" in last, err       # whichever turns non-finite first names itself
    assert "no checkpoint had been written, so" in last and "can be used again for a new run" in last
    assert not any(run.glob("*.safetensors")) and not (run / "trainer_state.pt").exists()
    # with a checkpoint every step, the one of step 1 stays, finite, and the folder is resumable
    run2 = tmp_path / "run2"
    code, out, err = run_main("train", *TINY, "--lr", "1e6", "--checkpoint-every", "1", "--data", work / "emb.safetensors", "--out", run2)
    assert code == 2 and "the last checkpoint (step 1)" in err and "is unchanged and finite" in err, err
    assert read_state(run2 / "trainer_state.pt")["step"] == 1 and finite_state(run2 / "trainer_state.pt")
    # the folder without a checkpoint is no dead end: a new run with a sane lr starts in it, and so does --resume
    with no_evaluation(): code, out, err = run_main("train", *TINY, "--epochs", "1", "--data", work / "emb.safetensors", "--out", run)
    assert code == 0 and (run / "results.json").is_file(), err
    assert [r["epoch"] for r in read_metrics(run) if r["kind"] == "epoch"] == [1]


def test_started_folder_resumes_from_step_0(work, tmp_path):
    "A run that died before its first checkpoint (only config.json and some metrics): --resume starts it from step 0."
    run = tmp_path / "run"; run.mkdir()
    shutil.copy(work / "base" / "config.json", run / "config.json")
    (run / "metrics.jsonl").write_text('{"kind": "step", "step": 1}\n{"kind": "st')
    with no_evaluation(): code, out, err = run_main("train", "--resume", run, "--epochs", "1", "--quiet")
    assert code == 0, err
    assert read_state(run / "trainer_state.pt")["epoch"] == 1 and read_metrics(run)[0]["kind"] == "grad_shares"


def test_disk_full_names_the_folder_and_the_resume(work, tmp_path, monkeypatch):
    real = torch.save
    def full(obj, f, *a, **k):
        if read_metrics(run) and any(r["kind"] == "epoch" for r in read_metrics(run)): raise OSError(28, "No space left on device", str(f))
        return real(obj, f, *a, **k)
    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", full)
    code, out, err = run_main("train", *TINY, "--checkpoint-every", "5", "--data", work / "emb.safetensors", "--out", run)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "No space left on device" in last and "the last checkpoint (step 10) is intact" in last, err
    assert f"continue with `cellnet3d train --resume {run}`" in last and not list(run.glob(".*.tmp*"))


def test_relative_data_is_stored_absolute(work, tmp_path):
    run = tmp_path / "run"
    with no_evaluation():
        code, out, err = run_main("train", *TINY, "--epochs", "1", "--data", "emb.safetensors", "--out", run, cwd=work)
        assert code == 0, err
        assert CellNetConfig.load(run / "config.json").train.data == str(work / "emb.safetensors")
        code, out, err = run_main("train", "--resume", run, "--epochs", "2", "--quiet", cwd=tmp_path)     # from elsewhere
    assert code == 0 and read_state(run / "trainer_state.pt")["epoch"] == 2, err


def test_a_bug_shows_its_traceback_and_says_so(monkeypatch):
    def broken(args): raise TypeError("unsupported operand")
    monkeypatch.setitem(cli_module.COMMANDS, "config", broken)
    code, out, err = run_main("config", "show")
    assert code == 1 and "Traceback" in err and "internal error (TypeError): this is a bug in cellnet3d, not in your input" in err


# --- faults on real processes ------------------------------------------------------------------------------------

DRIVER = r'''
import importlib.util, os, signal, sys, time
import torch
from cellnet3d import cli, trainer
mode, at = sys.argv[1], int(sys.argv[2])
real_find = importlib.util.find_spec                         # the evaluation is not what these tests are about
importlib.util.find_spec = lambda name, *a: None if name == "cellnet3d.evaluate" else real_find(name, *a)
real_step, real_save = trainer.Trainer.train_step, torch.save
def step(self, xb, yb):
    if self.step == at:
        if mode in ("kill", "int", "term"): os.kill(os.getpid(), {"kill": signal.SIGKILL, "int": signal.SIGINT, "term": signal.SIGTERM}[mode])
    if mode == "hold" and self.step == at:                   # wait here, lock held, until the test says go
        while not os.path.exists(os.environ["RELEASE_FILE"]): time.sleep(0.05)
    return real_step(self, xb, yb)
writes = [0]
def save(obj, f, *a, **k):
    writes[0] += 1
    if mode == "kill-in-write" and writes[0] == at:          # the at-th checkpoint dies half-way through its write
        with open(f, "wb") as h: h.write(b"half a checkpoint"); h.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *a, **k)
trainer.Trainer.train_step, torch.save = step, save
sys.exit(cli.main(sys.argv[3:]))
'''


def process(mode, at, *args, wait=True, release=None):
    "`cellnet3d ARGS` in a fresh process, with a fault injected at step (or checkpoint write) `at`; the CompletedProcess or Popen."
    env = {**os.environ, "RELEASE_FILE": str(release), "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", DRIVER, mode, str(at), *map(str, args)]
    if not wait: return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def same_run(a, b):
    "Assert that two finished runs hold bit-identical weights, the same state counters and the same metrics (timings aside)."
    for f in ("last.safetensors", "model.safetensors"):
        x, y = load_file(str(a / f)), load_file(str(b / f))
        assert sorted(x) == sorted(y) and all(torch.equal(x[k], y[k]) for k in x), f
    sa, sb = read_state(a / "trainer_state.pt"), read_state(b / "trainer_state.pt")
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert (sa["epoch"], sa["step"], sa["best_epoch"]) == (sb["epoch"], sb["step"], sb["best_epoch"])
    strip = lambda recs: [{k: v for k, v in r.items() if "per_s" not in k and k != "seconds"} for r in recs]
    assert strip(read_metrics(a)) == strip(read_metrics(b))


@pytest.fixture(scope="module")
def reference(work):
    "The uninterrupted run, in a process of its own (one thread, like the faulty ones)."
    run = work / "reference"
    p = process("none", -1, "train", *TINY, "--data", work / "emb.safetensors", "--out", run)
    assert p.returncode == 0, p.stderr
    return run


def test_faults_resume_bit_identical(work, reference):
    run = work / "faulty"
    data = ("--data", work / "emb.safetensors")
    resume = ("train", "--resume", run, "--quiet", "--checkpoint-every", EVERY)
    # SIGKILL in the middle of epoch 1: the checkpoint of step 4 is what is left
    p = process("kill", 6, "train", *TINY, *data, "--out", run, "--checkpoint-every", EVERY)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert read_state(run / "trainer_state.pt")["step"] == 4
    # SIGINT (Ctrl-C) in epoch 1: the step finishes, a checkpoint is written, the command to continue is printed, exit 130
    p = process("int", 9, *resume)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 130, p.stderr
    assert last.startswith("cellnet3d train: SIGINT: stopped at step 10, batch 10 of 12 in epoch 1 of 3; saved model, optimizer and position to")
    assert last.endswith(f"continue with: cellnet3d train --resume {run}")
    assert read_state(run / "trainer_state.pt")["step"] == 10
    # SIGKILL half-way through the second checkpoint write (step 16): the one of step 12 (epoch 1's end) stays, the temporary file is orphaned
    p = process("kill-in-write", 2, *resume)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert read_state(run / "trainer_state.pt")["step"] == 12 and len(list(run.glob(".trainer_state.tmp*"))) == 1
    # SIGTERM in epoch 2 (the orphan is cleaned by this writer): exit 143
    p = process("term", 19, *resume)
    assert p.returncode == 143 and "SIGTERM: stopped at step 20, batch 8 of 12 in epoch 2" in p.stderr, p.stderr
    assert not list(run.glob(".*.tmp*")) and read_state(run / "trainer_state.pt")["step"] == 20
    # SIGKILL right at an epoch boundary (before step 25, the first of epoch 3)
    p = process("kill", 24, *resume)
    assert p.returncode == -signal.SIGKILL and read_state(run / "trainer_state.pt")["step"] == 24, p.stderr
    # and to the end
    p = process("none", -1, *resume)
    assert p.returncode == 0, p.stderr
    same_run(reference, run)


def test_two_writers(work, reference, tmp_path):
    run = tmp_path / "shared"
    release = tmp_path / "go"
    first = process("hold", 5, "train", *TINY, "--data", work / "emb.safetensors", "--out", run, wait=False, release=release)
    try:
        deadline = time.time() + 120
        while not ((run / LOCK_NAME).is_file() and (run / LOCK_NAME).read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.time() < deadline, "the first writer never took the lock"
            time.sleep(0.1)
        second = process("none", -1, "train", *TINY, "--data", work / "emb.safetensors", "--out", run, "--set", "seed=2", wait=False)
        resumer = process("none", -1, "train", "--resume", run, "--quiet", wait=False)
        (_, err2), (_, err3) = second.communicate(timeout=300), resumer.communicate(timeout=300)
        assert first.poll() is None, "the first writer ended before the others were refused: the test proved nothing"
        release.touch()
        assert second.returncode == 2 and f"is in use by another training process (pid {first.pid})" in err2.strip().splitlines()[-1], err2
        assert resumer.returncode == 2 and f"(pid {first.pid})" in err3, err3
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None: first.kill()
    assert first.returncode == 0, err
    same_run(reference, run)                                   # untouched: the run it would have been alone
