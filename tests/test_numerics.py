"""Results must not depend on the CPU's last bits: the teacher's embeddings differ in their last bits from one CPU to
another. A tiny training run on the bundled teacher's embeddings of the bundled corpus, and the same run on those
embeddings with relative 1e-7 noise (what another CPU gives), keep every loss term finite and agree within tolerance."""
import math, sys
from pathlib import Path
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cellnet3d import CellNetConfig, TeacherEncoder, bundled_corpus, train, read_metrics  # noqa: E402
from cellnet3d.losses import LOSS_TERMS  # noqa: E402

N_PAIRS = 400


@pytest.fixture(scope="module")
def pairs():
    "Question and answer embeddings [N, 384] of the first dialogue pairs, each distinct text embedded once (copies stay copies)."
    corpus = bundled_corpus()
    q, a = corpus.questions[:N_PAIRS], corpus.answers[:N_PAIRS]
    texts = list(dict.fromkeys(q + a))
    emb = TeacherEncoder("bundled", device="cpu").encode(texts, progress=False)        # [U, 384], unit rows
    row = {t: i for i, t in enumerate(texts)}
    return emb, torch.tensor([row[t] for t in q]), torch.tensor([row[t] for t in a])


def _run(emb, qi, ai, out):
    cfg = CellNetConfig.preset("tiny", task="dialogue", epochs=2, seed=0)
    run = train(cfg, data=(emb[qi], emb[ai]), out=out, device="cpu", progress=False)
    return [r for r in read_metrics(run) if r.get("kind") in ("step", "epoch")]


def test_last_bit_noise_keeps_terms_finite_and_results_close(pairs, tmp_path):
    emb, qi, ai = pairs
    g = torch.Generator().manual_seed(1)
    noisy = emb * (1 + 1e-7 * torch.randn(emb.shape, generator=g))                     # another CPU's last bits
    assert 0 < (noisy - emb).abs().max() < 1e-6
    a, b = _run(emb, qi, ai, tmp_path / "exact"), _run(noisy, qi, ai, tmp_path / "noisy")
    assert [r["kind"] for r in a] == [r["kind"] for r in b] and sum(r["kind"] == "epoch" for r in a) == 2
    terms = (*LOSS_TERMS, "total", "cos")
    for ra, rb in zip(a, b):
        keys = [k for k in ra if k.removeprefix("val_") in terms]
        assert "contrastive" in keys and (ra["kind"] == "step" or "val_contrastive" in keys), keys
        for k in keys:
            assert math.isfinite(ra[k]) and math.isfinite(rb[k]), (ra, rb)
            assert abs(ra[k] - rb[k]) <= 1e-3 * max(1.0, abs(ra[k])), (k, ra[k], rb[k])
