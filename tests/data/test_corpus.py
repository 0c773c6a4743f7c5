import hashlib
import shutil

import pytest

from sekd.data import (
    Corpus,
)


def test_corpus_sha256_all_files(corpus):
    assert len(corpus.files) == 2172
    bad = [
        f.path for f in corpus.files if hashlib.sha256(f.path.read_bytes()).hexdigest() != f.sha256
    ]
    assert bad == []
    assert corpus.verify() == []


def test_corpus_verify_detects_change(tmp_path, corpus):
    root = tmp_path / "c"
    shutil.copytree(corpus.root / "pairs" / "dns", root / "pairs" / "dns")
    rows = [
        ln for ln in (corpus.root / "manifest.csv").read_text().splitlines() if "pairs/dns" in ln
    ]
    header = (corpus.root / "manifest.csv").read_text().splitlines()[0]
    (root / "manifest.csv").write_text("\n".join([header, *rows]) + "\n")
    c = Corpus(root)
    assert c.verify() == []
    victim = c.files[0].path
    victim.write_bytes(victim.read_bytes()[:-10])
    assert c.verify() == [str(victim)]


def test_corpus_select(corpus):
    grid_test = corpus.select(kind="speech", dataset="grid", split="test")
    assert len(grid_test) == 40 and {f.speaker for f in grid_test} == {"s39", "s40"}
    assert len(corpus.select(kind="noise", noise_type=["babble", "m109"], split="train")) == 2
    assert (
        len(corpus.select(kind="pair", dataset="voicebank-demand", split="test", role="noisy"))
        == 31
    )
    assert len(corpus.select(kind="speech", speaker="s39")) == 20
    with pytest.raises(ValueError, match="unknown corpus filter"):
        corpus.select(colour="red")
