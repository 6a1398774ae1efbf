"Package-level checks: the public contract of DESIGN.md, and a fresh interpreter importing the package."
import subprocess, sys, json
import cellnet3d as cn

def test_public_config_contract(tmp_path):
    cfg = cn.CellNetConfig.preset("default")
    assert cfg.lattice.dims == (8, 8, 8) and cfg.lattice.max_radius == 2.0
    assert cfg.lattice.get_distance_thresholds() == (1.0, 1.5, 2.0)
    cfg2 = cfg.replace(dims=(5, 7, 9), adaptive_radius_ratio=0.3)
    assert cfg2.lattice.dims == (5, 7, 9) and cfg2.lattice.adaptive_radius_ratio == 0.3
    assert cn.CellNetConfig.from_json(cfg2.to_json()) == cfg2
    path = cfg2.save(tmp_path / "c.json")
    assert json.loads(path.read_text())["lattice"]["dims"] == [5, 7, 9]
    assert cn.CellNetConfig.load(path) == cfg2

def test_describe_in_fresh_interpreter():
    out = subprocess.run([sys.executable, "-c", "import cellnet3d as cn; print(cn.CellNetConfig.preset('default').describe())"],
                         capture_output=True, text=True, check=True).stdout
    assert "reach (cells per step)     2" in out and "8×8×8" in out

def test_readme_is_current():
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / ".ci" / "readme.py"), "--check"], check=True)
