"A run folder written before the Hub mixin (tests/fixtures/run_v0_1) still loads, evaluates and answers."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "tests" / "fixtures" / "run_v0_1"


def cli(*args, cache):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CELLNET3D_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cellnet3d", *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_from_pretrained_reads_an_old_run():
    from cellnet3d import CellNet3D, CellNetConfig
    model = CellNet3D.from_pretrained(OLD)
    assert model.cfg == CellNetConfig.load(OLD / "config.json") and model.teacher_dim == 384
    saved = load_file(str(OLD / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items() if k in saved)
    assert sorted([*saved, "cube_gate"]) == sorted(n for n, _ in model.named_parameters())   # every weight but the gate, newer than the file
    assert model.cube_gate.item() == 1.0                                   # so the gate is 1: the cube's back face alone, as it was trained


def test_eval_and_ask_on_an_old_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD, run)                                   # eval writes into the folder: never into the fixture
    old_eval = json.loads((OLD / "results.json").read_text())["evaluation"]
    p = cli("eval", run, "--device", "cpu", cache=tmp_path / "cache")
    assert p.returncode == 0, p.stdout + p.stderr
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    new, old = ev["models"]["student"], old_eval["models"]["student"]    # the same model on the same split, scored the same:
    assert new.keys() == old.keys()                                        # up to the last bits another CPU's teacher changes
    assert all(new[k] == pytest.approx(old[k], rel=1e-5, abs=1e-6) for k in old), (new, old)
    p = cli("ask", run, "What is 3 plus 3?", "--k", "2", cache=tmp_path / "cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "What is 3 plus 3?" in p.stdout and p.stdout.count("\n") >= 3, p.stdout
