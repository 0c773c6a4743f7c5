import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.data import (
    OnTheFlyMixDataset,
    PairedFolderDataset,
    PremixedTestSet,
    PremixSpec,
    build_premixed,
    collate,
    match_pairs,
    prepare_voicebank,
    read_audio,
    snr_db,
    voicebank_dirs,
    voicebank_train_valid,
)


def _otf(corpus, **kw):
    speech = corpus.select(kind="speech", dataset="grid", split="train")[:6]
    noise = corpus.select(
        kind="noise", dataset="noisex-92", split="train", noise_type=["babble", "white"]
    )
    return OnTheFlyMixDataset(speech, noise, segment=8000, length=8, **kw)


def test_on_the_fly_is_deterministic_per_seed_and_epoch(corpus):
    ds = _otf(corpus, snrs=[-5, 0, 5], seed=7)
    a = ds[3]
    again = _otf(corpus, snrs=[-5, 0, 5], seed=7)[3]
    torch.testing.assert_close(a["mixture"], again["mixture"])
    assert a["mixture"].shape == (1, 8000) and a["snr"] in (-5, 0, 5)
    assert a["noise_type"] in ("babble", "white")
    assert abs(snr_db(a["clean"].numpy(), a["noise"].numpy()) - a["snr"]) < 1e-4
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["mixture"], a["mixture"])
    other = _otf(corpus, snrs=[-5, 0, 5], seed=8)[3]
    assert not torch.equal(other["mixture"], a["mixture"])


def test_on_the_fly_snr_range(corpus):
    ds = _otf(corpus, snr_range=(2.0, 3.0))
    snrs = [ds[i]["snr"] for i in range(len(ds))]
    assert all(2.0 <= s <= 3.0 for s in snrs) and len(set(snrs)) == len(snrs)
    with pytest.raises(ValueError, match="exactly one"):
        _otf(corpus)


def test_paired_folder_segments_and_padding(corpus):
    noisy, clean = corpus.pair_dirs("voicebank_demand", "test")
    whole = PairedFolderDataset(noisy, clean)
    assert len(whole) == 31
    seg = PairedFolderDataset(noisy, clean, segment=32_000, hop=16_000)
    per_file = {}
    for name, _ in seg.index:
        per_file[name] = per_file.get(name, 0) + 1
    for name, (xn, _) in seg.audio.items():
        assert per_file[name] == max(1, int(np.ceil((len(xn) - 32_000) / 16_000)) + 1)
    last = max(i for i, (n, _) in enumerate(seg.index) if n == seg.names[0])
    item = seg[last]
    assert item["mixture"].shape == (1, 32_000)
    xn, xc = seg.audio[seg.names[0]]
    start = seg.index[last][1]
    tail = len(xn) - start
    torch.testing.assert_close(item["mixture"][0, :tail], torch.from_numpy(xn[start:]))
    assert torch.all(item["mixture"][0, tail:] == 0)
    torch.testing.assert_close(item["noise"], item["mixture"] - item["clean"])


def test_paired_folder_reports_corrupt_file_and_keeps_others(tmp_path, corpus):
    noisy, clean = corpus.pair_dirs("voicebank_demand", "test")
    for sub, src in (("noisy", noisy), ("clean", clean)):
        shutil.copytree(src, tmp_path / sub)
    (tmp_path / "noisy" / "p232_005.flac").write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = PairedFolderDataset(tmp_path / "noisy", tmp_path / "clean")
    assert len(ds) == 30 and "p232_005" not in ds.names
    assert len(ds.errors) == 1 and "p232_005.flac" in str(ds.errors[0])
    assert any("p232_005" in str(w.message) for w in caught)


def test_match_pairs_lists_unmatched(tmp_path, corpus):
    noisy, clean = corpus.pair_dirs("dns")
    shutil.copytree(noisy, tmp_path / "n")
    shutil.copytree(clean, tmp_path / "c")
    victim = sorted((tmp_path / "c").iterdir())[0]
    victim.rename(victim.with_name("renamed.flac"))
    with pytest.raises(ValueError, match="renamed"):
        match_pairs(tmp_path / "n", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no WAV/FLAC files in .*empty"):
        match_pairs(tmp_path / "empty", tmp_path / "c")


def test_prepare_voicebank_resamples_and_splits_speakers(tmp_path, corpus, fake_voicebank):
    raw = fake_voicebank  # p287 (validation) and p226 (training) in the training folders
    cache = prepare_voicebank(raw, tmp_path / "cache")
    noisy16, clean16 = voicebank_dirs(cache, "train")
    f = sorted(clean16.glob("p287_*"))[0]
    assert sf.info(str(f)).samplerate == 16_000
    orig = read_audio(corpus.pair_dirs("voicebank_demand", "train")[1] / (f.stem + ".flac"))
    y = read_audio(f)
    assert abs(len(y) - len(orig)) <= 1
    k = min(len(y), len(orig))
    assert np.corrcoef(y[:k], orig[:k])[0, 1] > 0.999
    mtime = f.stat().st_mtime_ns
    prepare_voicebank(raw, tmp_path / "cache")  # idempotent: nothing rewritten
    assert f.stat().st_mtime_ns == mtime
    train, valid = voicebank_train_valid(cache, segment=16_000, hop=16_000)
    assert set(train.names) == {"p226_001"}
    assert {n.split("_")[0] for n in valid.names} == {"p287"}


def test_premixed_set_is_deterministic_and_reused(tmp_path, corpus):
    spec = PremixSpec(utterances=2, noise_types=("babble", "white"), snrs=(0.0, 10.0))
    a = build_premixed(tmp_path / "a", spec, corpus)
    b = build_premixed(tmp_path / "b", spec, corpus)
    ds = PremixedTestSet(a)
    assert len(ds) == 2 * 2 * 2
    for (na, ca), (nb, cb) in zip(ds.pairs(), PremixedTestSet(b).pairs()):
        np.testing.assert_array_equal(read_audio(na), read_audio(nb))
        np.testing.assert_array_equal(read_audio(ca), read_audio(cb))
    item = ds[0]
    assert item["snr"] in (0.0, 10.0) and item["noise_type"] in ("babble", "white")
    # float WAV storage keeps the SNR to rounding
    assert abs(snr_db(item["clean"].numpy(), item["noise"].numpy()) - item["snr"]) < 1e-3
    mtime = (a / "manifest.csv").stat().st_mtime_ns
    assert build_premixed(tmp_path / "a", spec, corpus) == a
    assert (a / "manifest.csv").stat().st_mtime_ns == mtime


def test_premixed_set_leaves_out_excluded_speech(tmp_path, corpus):
    base = PremixSpec(utterances=3, noise_types=("babble",), snrs=(0.0,))
    # a spec that excludes nothing keeps the folder name sets had before the field existed
    assert PremixSpec().key() == "99028b81ef"
    first = PremixedTestSet(build_premixed(tmp_path, base, corpus))
    used = sorted({r["speech"] for r in first.rows})
    assert len(used) == 3
    other = PremixSpec(
        utterances=3, noise_types=("babble",), snrs=(0.0,), exclude_speech=tuple(used)
    )
    assert other.key() != base.key()
    second = PremixedTestSet(build_premixed(tmp_path, other, corpus))
    assert len({r["speech"] for r in second.rows}) == 3
    assert not {r["speech"] for r in second.rows} & set(used)


def test_collate_pads_and_returns_lengths():
    items = [
        {
            "mixture": torch.ones(1, n),
            "clean": torch.ones(1, n),
            "noise": torch.zeros(1, n),
            "snr": float(n),
            "noise_type": "x",
            "name": str(n),
        }
        for n in (5, 9, 7)
    ]
    b = collate(items)
    assert b["mixture"].shape == (3, 1, 9)
    assert b["lengths"].tolist() == [5, 9, 7]
    assert b["mixture"][0, 0, 5:].abs().sum() == 0 and b["mixture"][0, 0, :5].sum() == 5
    assert b["snr"].tolist() == [5.0, 9.0, 7.0]
