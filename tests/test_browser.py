"""Run All in a real JupyterLab, in headless Chromium: every notebook runs without an error output, every plotly figure
draws, the sliders of 00_config, 01_lattice and 04_model change what they are linked to. Screenshots go to
$CELLNET3D_SCREENSHOTS (default: the test's temporary folder); `CELLNET3D_SCREENSHOTS=nbs/images pytest tests/test_browser.py`
refreshes the README's."""
import json, os, shutil, socket, subprocess, sys, time, secrets, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))
CHROMIUM_FLAGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_ALL_TIMEOUT_S = 600
CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "chromium is not installed: apt-get install -y chromium (.ci/run does; CELLNET3D_REQUIRE_BROWSER=1 fails instead of skipping)"
if CHROMIUM is None and os.environ.get("CELLNET3D_REQUIRE_BROWSER") != "1":
    pytestmark = pytest.mark.skip(reason=NO_CHROMIUM)    # one reason for every browser test, shown in pytest's summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 with its own home, settings and token; stopped (and checked stopped) afterwards."
    home = tmp_path_factory.mktemp("home")
    settings = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell rendered (no windowing), so off-screen plots draw and can be checked
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    docmanager = home / "lab-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)                        # never write the notebooks back (outputs stay out of the repo)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    root = home / "repo"                                  # and run a copy of them, so nothing can change the checkout
    shutil.copytree(ROOT / "nbs", root / "nbs", ignore=shutil.ignore_patterns("runs", "images", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "settings.ini", root)              # the notebooks' last cell exports (into the copy)
    shutil.copytree(ROOT / "tests" / "fixtures", root / "tests" / "fixtures")   # the notebooks' fixtures (05c_wordnet's wndb files)
    apputils = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)                          # no news toast over the screenshots
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "CELLNET3D_CACHE": str(home / "cache"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--expose-app-in-browser",
                             "--ServerApp.open_browser=False", "--allow-root", "--ServerApp.terminals_enabled=False", "--LabApp.news_url=", "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2); break
        except Exception:
            if proc.poll() is not None: pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    else:
        proc.kill(); pytest.fail(f"jupyter lab did not answer on {url}:\n{(home / 'lab.log').read_text()[-3000:]}")
    yield dict(url=url, token=token, home=home)
    proc.terminate()
    try: proc.wait(timeout=30)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    log.close()
    assert proc.poll() is not None


@pytest.fixture(scope="module")
def browser():
    "Debian's chromium driven by playwright (playwright cannot download its own browser here)."
    from playwright.sync_api import sync_playwright
    if CHROMIUM is None: pytest.fail(NO_CHROMIUM)       # only with CELLNET3D_REQUIRE_BROWSER=1: skipped otherwise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


OPEN_JS = """async () => {
  const app = window.jupyterapp;
  let panel = app.shell.currentWidget;
  for (let i = 0; i < 600 && !(panel && panel.sessionContext && panel.content && panel.content.widgets); i++) {
    await new Promise(r => setTimeout(r, 100)); panel = app.shell.currentWidget;
  }
  await panel.context.ready; await panel.sessionContext.ready;
  for (let i = 0; i < 600 && !panel.sessionContext.session?.kernel; i++) await new Promise(r => setTimeout(r, 100));
  return panel.context.path;
}"""

RUN_ALL_JS = """async () => {
  const app = window.jupyterapp, panel = app.shell.currentWidget;
  const t0 = Date.now();
  await app.commands.execute('notebook:run-all-cells');
  // wait until no cell is queued or running (the command's promise can resolve before the last output arrives)
  for (;;) {
    const busy = [...panel.content.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
    if (!busy && panel.sessionContext.session.kernel.status === 'idle') break;
    await new Promise(r => setTimeout(r, 250));
  }
  return (Date.now() - t0) / 1000;
}"""

CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.filter(c => c.model.type === 'code').map((c, i) => ({
  index: i, count: c.model.executionCount, source: c.model.sharedModel.getSource().split('\\n').slice(0, 2).join(' | ').slice(0, 100),
  errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
  stderr_tracebacks: c.model.outputs.toJSON().filter(o => o.output_type === 'stream' && o.name === 'stderr' && /Traceback/.test(o.text))
                      .map(o => o.text.slice(-300))}))"""

PLOTS_JS = """() => [...window.jupyterapp.shell.currentWidget.content.node.querySelectorAll('.js-plotly-plot')].map(gd => {
  const r = gd.getBoundingClientRect();
  const canvases = [...gd.querySelectorAll('canvas')].filter(c => c.width > 0 && c.height > 0).length;
  const marks = gd.querySelectorAll('.trace, .point, .bars path, .heatmaplayer image, .imagelayer image, .column-cell').length;
  const points = (gd.data || []).reduce((n, t) => n + ((t.x || t.z || t.values || t.y || t.cells?.values?.[0] || []).length || 0), 0);
  return {title: gd.layout?.title?.text || (typeof gd.layout?.title === 'string' ? gd.layout.title : ''), width: r.width, height: r.height,
          traces: (gd.data || []).length, points, canvases, marks, scene: !!gd._fullLayout?.scene};
})"""

SHUTDOWN_JS = """async () => { const p = window.jupyterapp.shell.currentWidget; await p.sessionContext.shutdown(); return true; }"""


def figure_state(page, index:int) -> str:
    "A fingerprint of plotly figure `index` of the open notebook: its title and the sizes of its traces."
    return page.evaluate("""i => { const gd = window.jupyterapp.shell.currentWidget.content.node.querySelectorAll('.js-plotly-plot')[i];
        return JSON.stringify([gd.layout?.title?.text, (gd.data || []).map(t => [t.name, (t.x || []).length, (t.x || []).slice(0, 50),
                               Array.isArray(t.marker?.color) ? t.marker.color.slice(0, 50) : t.marker?.color])]); }""", index)


def press_slider(page, label:str, key:str="ArrowRight", times:int=1):
    "Focus the ipywidgets slider whose description is `label` and press `key`."
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=label)).first
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed(); handle.focus()
    for _ in range(times): handle.press(key)
    page.wait_for_timeout(1500)


def shots_dir(tmp_path) -> Path:
    "Where screenshots go: $CELLNET3D_SCREENSHOTS, else the test's temporary folder."
    d = Path(os.environ.get("CELLNET3D_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all(lab, browser, name, tmp_path):
    "Run All in JupyterLab: no error output, every cell run, every plotly figure drawn; then the notebook's slider check."
    page = browser.new_page(viewport={"width": 1600, "height": 1300})
    try:
        page.goto(f"{lab['url']}/lab/tree/nbs/{name}?token={lab['token']}&reset", wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=120_000)
        path = page.evaluate(OPEN_JS)
        assert path == f"nbs/{name}", path
        page.set_default_timeout(RUN_ALL_TIMEOUT_S * 1000)
        seconds = page.evaluate(RUN_ALL_JS)
        cells = page.evaluate(CELLS_JS)
        print(f"{name}: Run All took {seconds:.0f} s, {len(cells)} code cells")
        bad = [c for c in cells if c["errors"] or c["stderr_tracebacks"]]
        assert not bad, f"{name}: cells with an error output: {json.dumps(bad, indent=1, ensure_ascii=False)}"
        not_run = [c for c in cells if c["count"] is None and c["source"].strip()]
        assert not not_run, f"{name}: cells that did not run: {json.dumps(not_run, indent=1, ensure_ascii=False)}"
        page.wait_for_timeout(1000)
        plots = page.evaluate(PLOTS_JS)
        empty = [p for p in plots if p["traces"] == 0 or p["points"] == 0 or p["width"] < 100 or p["height"] < 100
                 or (p["canvases"] if p["scene"] else p["marks"]) == 0]
        assert not empty, f"{name}: empty plotly figures: {json.dumps(empty, indent=1, ensure_ascii=False)}"
        page.set_default_timeout(60_000)
        check_interaction(page, name, shots_dir(tmp_path))
    except Exception:
        page.screenshot(path=str(shots_dir(tmp_path) / f"failed-{name}.png"), full_page=True)
        raise
    finally:
        try: page.evaluate(SHUTDOWN_JS)
        except Exception: pass
        page.close()


def check_interaction(page, name:str, shots:Path):
    "In the notebooks with sliders, moving one changes what it is linked to; screenshots of the views the README shows."
    if name == "00_config.ipynb":
        out = page.locator(".widget-output", has_text="local threshold").last
        before = out.text_content()
        press_slider(page, "local")
        after = out.text_content()
        assert after != before, f"moving the 'local' slider did not change the text:\n{before}"
    elif name == "01_lattice.ipynb":
        n = len(page.evaluate(PLOTS_JS))
        view = page.locator(".js-plotly-plot").nth(n - 1)                 # the explorer's FigureWidget, the last figure
        view.scroll_into_view_if_needed(); page.wait_for_timeout(1000)
        view.screenshot(path=str(shots / "tiers.png"))
        before = figure_state(page, n - 1)
        press_slider(page, "radius", "ArrowLeft", 5)
        after = figure_state(page, n - 1)
        assert after != before, "moving the 'radius' slider did not change the tier view"
    elif name == "04_model.ipynb":
        explorer = page.locator(".widget-vbox", has=page.locator(".widget-text")).last
        explorer.scroll_into_view_if_needed(); page.wait_for_timeout(1000)
        n = len(page.evaluate(PLOTS_JS))
        i3d = n - 3                                                           # the explorer's 3D view, gate map, cut planes
        before = figure_state(page, i3d)
        press_slider(page, "step", "ArrowRight", 2)
        after = figure_state(page, i3d)
        assert after != before, "moving the 'step' slider did not change the trajectory view"
        page.wait_for_timeout(1000)
        explorer.screenshot(path=str(shots / "trajectory.png"))
