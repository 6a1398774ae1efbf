"""Distributed training in real processes: `cellnet3d train --nproc 2` (torchrun, 2 gloo processes) against one process,
and a rank killed in the middle of a run."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "qa.jsonl"
TINY = ("--preset", "tiny", "--task", "dialogue", "--data", DATA, "--batch-size", "8", "--device", "cpu", "--quiet")


def env(**extra):
    e = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
         "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    e.pop("WORLD_SIZE", None)
    return {**e, **{k: str(v) for k, v in extra.items()}}


def train(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "cellnet3d", "train", *map(str, args)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def test_two_processes_give_the_weights_of_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    t0 = time.perf_counter(); p1 = train(*TINY, "--epochs", 2, "--set", "log_every=1", "--out", one); t1 = time.perf_counter() - t0
    t0 = time.perf_counter(); p2 = train(*TINY, "--epochs", 2, "--set", "log_every=1", "--out", two, "--nproc", 2); t2 = time.perf_counter() - t0
    assert p1.returncode == 0, p1.stdout + p1.stderr
    assert p2.returncode == 0, p2.stdout + p2.stderr
    print(f"wall time, same run: 1 process {t1:.1f} s, 2 processes (torchrun) {t2:.1f} s")
    for f in ("model.safetensors", "last.safetensors"):                   # the same weights after every step of both epochs
        a, b = load_file(str(one / f)), load_file(str(two / f))
        assert a.keys() == b.keys()
        for k in a: torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    m1, m2 = ((one / "metrics.jsonl").read_text().splitlines(), (two / "metrics.jsonl").read_text().splitlines())
    r1, r2 = json.loads((one / "results.json").read_text()), json.loads((two / "results.json").read_text())
    assert len(m1) == len(m2) and sum('"kind": "step"' in l for l in m2) == r2["steps"] == 6   # one row per step, not per rank
    assert (r1["processes"], r2["processes"]) == (1, 2) and r1["steps"] == r2["steps"]
    assert abs(r1["val"]["total"] - r2["val"]["total"]) < 1e-4 and abs(r1["test"]["total"] - r2["test"]["total"]) < 1e-4
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())   # written once: no per-rank files
    assert p2.stdout.count("run folder:") == 1 and "student (cube)" in p2.stdout             # rank 0 reports, once


def worker_pids(launcher_pid:int) -> dict:
    "{RANK: pid} of the processes torchrun started below `launcher_pid`."
    kids, out = {launcher_pid}, {}
    for _ in range(3):                                                   # launcher -> torchrun -> workers
        for d in Path("/proc").iterdir():
            if not d.name.isdigit(): continue
            try: ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]); envs = (d / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError): continue
            if ppid in kids:
                kids.add(int(d.name))
                rank = next((e[5:].decode() for e in envs if e.startswith(b"RANK=")), None)
                if rank is not None and b"TORCHELASTIC_RUN_ID" in b"".join(envs): out[int(rank)] = int(d.name)
    return out


def test_a_killed_rank_ends_the_run(tmp_path):
    run = tmp_path / "run"
    args = [*TINY, "--epochs", 200, "--set", "patience=1000", "--checkpoint-every", 1, "--out", run, "--nproc", 2]
    p = subprocess.Popen([sys.executable, "-m", "cellnet3d", "train", *map(str, args)], cwd=ROOT, env=env(CELLNET3D_DIST_TIMEOUT=60),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not ((run / "trainer_state.pt").exists() and len(worker_pids(p.pid)) == 2): time.sleep(0.5)
        pids = worker_pids(p.pid)
        assert len(pids) == 2 and (run / "trainer_state.pt").exists(), (pids, p.poll())
        os.kill(pids[1], signal.SIGKILL)
        t0 = time.time()
        out, _ = p.communicate(timeout=120)
        ended = time.time() - t0
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode != 0, out
    print(f"the run ended {ended:.1f} s after rank 1 was killed, exit code {p.returncode}; torchrun said:\n" +
          "\n".join(l for l in out.splitlines() if "rank" in l or "exitcode" in l or "Signal" in l))
    assert ended < 120
    assert "rank" in out and ("-9" in out or "SIGKILL" in out), out[-3000:]                # torchrun names the rank and its signal
    from cellnet3d.run import read_state
    from cellnet3d import CellNet3D
    state = read_state(run / "trainer_state.pt")                          # the last checkpoint stays loadable
    assert state["step"] >= 1
    model = CellNet3D.load(run / "model.safetensors") if (run / "model.safetensors").exists() else None   # only after a whole epoch
    assert model is None or all(p.isfinite().all() for p in model.parameters())
    assert all(v.isfinite().all() for v in state["model"].values())
