import pytest
import torch

from sekd.models import VIEWS, Manner, MannerConfig, build, count_parameters, load_model, save_model
from sekd.models.manner import (
    n_chunks,
    overlap_add,
    overlap_add_literal,
    segment,
    segment_literal,
    set_literal,
    valid_length,
)


@pytest.mark.parametrize(
    "preset, params",
    [
        ("manner_b", 24_068_671),
        ("manner_s_38gf", 21_253_921),
        ("manner_l", 95_498_941),
        ("student_1p5gf", 257_785),
        ("student_5p3gf", 901_777),
        ("student_8p1gf", 1_380_901),
    ],
)
def test_parameter_counts_exact(preset, params):
    assert count_parameters(build(preset)) == params


def test_unknown_preset_lists_known():
    with pytest.raises(KeyError, match="manner_b.*student_1p5gf"):
        build("manner_xxl")


def test_valid_length_examples():
    assert valid_length(16_000, 4) == 16_212
    assert valid_length(128_000, 4) == 128_084
    assert valid_length(16_000, 3) == 16_020


@pytest.mark.parametrize("T", [1, 31, 64, 257, 1001, 4097])
def test_segment_overlap_add_roundtrip_and_literal(T):
    x = torch.randn(2, 3, T)
    s = segment(x, 64)
    assert s.shape == (2, 3, n_chunks(T, 64), 64)
    torch.testing.assert_close(s, segment_literal(x, 64))
    torch.testing.assert_close(overlap_add(s, T), x)
    y = torch.randn_like(s)
    torch.testing.assert_close(overlap_add(y, T), overlap_add_literal(y, T))


@pytest.mark.parametrize("T", [2, 3, 7, 255, 1001, 3333])
def test_output_length_equals_input_length(T):
    m = build("tiny_student").eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, T)).shape == (1, 1, T)
        assert m(torch.randn(2, T)).shape == (2, 1, T)


def test_bad_input_shape_is_clear():
    m = build("tiny_student")
    with pytest.raises(ValueError, match="at least 2 samples"):
        m(torch.randn(1, 1, 1))
    with pytest.raises(ValueError, match=r"\(B, 1, T\).*\(2, 2, 100\)"):
        m(torch.randn(2, 2, 100))


def test_taps_keys_and_shapes_match_spec():
    """docs/manner.md's 4-second shapes, at hidden 8 instead of 60 (frames do not depend on
    width)."""
    m = build("tiny_teacher").eval()
    with torch.no_grad():
        y, taps = m(
            torch.randn(1, 1, 64_000), return_views=True, return_layers=True, return_probs=True
        )
    frames = {
        ("encoder", 1): 16020,
        ("encoder", 2): 4004,
        ("encoder", 3): 1000,
        ("encoder", 4): 249,
        ("decoder", 4): 1000,
        ("decoder", 3): 4004,
        ("decoder", 2): 16020,
        ("decoder", 1): 64084,
    }
    channels = {("encoder", d): 16 * 2 ** (d - 1) for d in range(1, 5)}
    channels.update({("decoder", d): 8 * 2 ** (d - 1) for d in range(1, 5)})
    assert set(taps.views) == {(*k, v) for k in frames for v in VIEWS}
    for (side, d, view), t in taps.views.items():
        assert t.shape == (1, channels[(side, d)] // 3, frames[(side, d)]), (side, d, view)
    for key, t in taps.layers.items():
        assert t.shape == (1, channels[key], frames[key])
    for key, p in taps.probs.items():
        P = n_chunks(frames[key])
        assert p.shape == (channels[key] // 3, P, P)
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))


def test_students_have_views_only_at_deepest_layer():
    m = build("tiny_student").eval()
    with torch.no_grad():
        _, taps = m(torch.randn(1, 1, 8000), return_views=True)
    assert {k[:2] for k in taps.views} == {("encoder", 3), ("decoder", 3)}


def test_plain_call_returns_only_waveform_and_matches_tapped():
    m = build("tiny_teacher").eval()
    x = torch.randn(1, 1, 5000)
    with torch.no_grad():
        plain = m(x)
        tapped, _ = m(x, return_views=True)
    assert isinstance(plain, torch.Tensor)
    torch.testing.assert_close(plain, tapped)


def test_fast_and_literal_paths_agree():
    m = build("tiny_teacher").eval()
    x = torch.randn(2, 1, 9000)
    with torch.no_grad():
        fast, tf = m(x, return_views=True)
        lit, tl = set_literal(m, True)(x, return_views=True)
    torch.testing.assert_close(fast, lit, atol=1e-5, rtol=1e-5)
    for k in tf.views:
        torch.testing.assert_close(tf.views[k], tl.views[k], atol=1e-5, rtol=1e-5)


def test_batch_items_are_independent_in_eval():
    """Documented behaviour: each item is normalised by the std of its (padded) signal, so a
    batch gives exactly what each padded item gives alone."""
    m = build("tiny_student").eval()
    a, b = torch.randn(1, 1, 4000), torch.randn(1, 1, 2500)
    batch = torch.cat([a, torch.nn.functional.pad(b, (0, 1500))])
    with torch.no_grad():
        out = m(batch)
        torch.testing.assert_close(out[:1], m(a), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1:], m(batch[1:]), atol=1e-5, rtol=1e-5)


def test_scale_of_input_is_restored():
    m = build("tiny_student").eval()
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        y1, y2 = m(x), m(10 * x)
    # normalisation by (1e-3 + std) makes the model almost scale-equivariant
    torch.testing.assert_close(y2, 10 * y1, rtol=1e-2, atol=1e-3)


def test_demucs_rescaling_applied():
    cfg = MannerConfig(depth=2, hidden=8, ma_layers=(1,))
    torch.manual_seed(0)
    raw = Manner(MannerConfig(**{**cfg.to_dict(), "ma_layers": (1,), "rescale": 0.0}))
    torch.manual_seed(0)
    scaled = Manner(cfg)
    pairs = [
        (r, s)
        for r, s in zip(raw.modules(), scaled.modules())
        if isinstance(r, (torch.nn.Conv1d, torch.nn.ConvTranspose1d))
    ]
    assert len(pairs) > 20
    for r, s in pairs:
        k = (r.weight.std() / 0.1) ** 0.5
        torch.testing.assert_close(s.weight, r.weight / k)
        if r.bias is not None:
            torch.testing.assert_close(s.bias, r.bias / k)
    # linear layers are left alone
    torch.testing.assert_close(scaled.bottleneck.weight, raw.bottleneck.weight)


def test_checkpoint_roundtrip_rebuilds_from_config(tmp_path):
    m = build("tiny_student").eval()
    path = save_model(m, tmp_path / "m.pt", preset="tiny_student")
    loaded = load_model(path)
    assert loaded.cfg == m.cfg
    x = torch.randn(1, 1, 3000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), m(x))


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(bad)


def test_config_validation():
    with pytest.raises(ValueError, match="ma_layers"):
        MannerConfig(depth=3, ma_layers=(3,))
    with pytest.raises(ValueError, match="growth"):
        MannerConfig(growth=3)


@pytest.mark.parametrize("preset", ["tiny_teacher", "waveunet_tiny"])
def test_batchnorm_folding_computes_the_same_function(preset):
    from sekd.models.fuse import fold_batchnorm

    m = build(preset)
    m.train()
    with torch.no_grad():
        m(torch.randn(3, 1, 6000))  # non-trivial running statistics
    m.eval()
    folded = fold_batchnorm(m)
    n_bn = sum(isinstance(x, torch.nn.BatchNorm1d) for x in folded.modules())
    assert n_bn < sum(isinstance(x, torch.nn.BatchNorm1d) for x in m.modules())
    x = torch.randn(2, 1, 7001)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), m(x), atol=1e-5, rtol=1e-4)
    assert m.training is False and any(isinstance(x, torch.nn.BatchNorm1d) for x in m.modules())


def test_channels_last_depthwise_is_the_same_function_forward_and_backward():
    from sekd.models.manner import DepthwiseConv1d, set_channels_last_depthwise

    conv = DepthwiseConv1d(12, 31)
    x = torch.randn(2, 12, 777, requires_grad=True)
    y_fast = conv(x)
    g_fast = torch.autograd.grad(y_fast.square().sum(), (x, conv.weight))
    conv.channels_last = False
    y_plain = conv(x)
    g_plain = torch.autograd.grad(y_plain.square().sum(), (x, conv.weight))
    torch.testing.assert_close(y_fast, y_plain, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_fast, g_plain):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    m = build("tiny_student").eval()
    xin = torch.randn(1, 1, 5000)
    with torch.no_grad():
        fast = m(xin)
        plain = set_channels_last_depthwise(m, False)(xin)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_tap_selection_keeps_only_the_named_blocks():
    m = build("tiny_teacher").eval()
    x = torch.randn(1, 1, 6000)
    with torch.no_grad():
        full_y, full = m(x, return_views=True, return_layers=True)
        some_y, some = m(x, return_views=[("decoder", 4), ("encoder", 2)], return_layers={})
    assert {k[:2] for k in full.views} == set(m.view_blocks())
    assert set(full.layers) == set(m.layer_keys())
    assert set(some.views) == {
        (s, d, v) for s, d in (("decoder", 4), ("encoder", 2)) for v in VIEWS
    }
    assert some.layers == {}  # an empty selection still returns (waveform, Taps)
    assert torch.equal(full_y, some_y)
    for k, v in some.views.items():
        assert torch.equal(v, full.views[k])
    student = build("tiny_student")
    assert student.view_blocks() == [("encoder", 3), ("decoder", 3)]
    with pytest.raises(ValueError, match=r"return_views: no such blocks \[\('encoder', 1\)\]"):
        student(x, return_views=[("encoder", 1)])


def _speech_batch(corpus, n=4, length=8000):
    import numpy as np

    from sekd.data import mix, read_audio

    rng = np.random.default_rng(0)
    noise = read_audio(corpus.select(kind="noise", noise_type="babble", split="train")[0].path)
    speech = corpus.select(kind="speech", dataset="ms-snsd-vctk", split="train")[:n]
    rows = [mix(read_audio(f.path)[:length], noise, 5.0, rng).mixture for f in speech]
    return torch.from_numpy(np.stack(rows))[:, None]


@pytest.mark.parametrize("preset", ["cpu_teacher", "student_1p5gf"])
def test_identity_init_starts_at_the_input_with_positive_polarity(corpus, preset):
    x = _speech_batch(corpus)
    held_out = _speech_batch(corpus, 8)[4:]
    for seed in range(3):
        torch.manual_seed(seed)
        m = build(preset).train()
        with torch.no_grad():
            before = m(held_out)
        buffers = {k: b.clone() for k, b in m.named_buffers()}
        r2 = m.init_identity(x)
        assert r2 > 0.8
        for k, b in m.named_buffers():  # running statistics untouched
            assert torch.equal(b, buffers[k]), k
        with torch.no_grad():
            after = m(held_out)
        gain = lambda y: ((y * held_out).sum(-1) / (held_out**2).sum(-1)).flatten()  # noqa: E731
        # the random initialisation: a small output of arbitrary polarity
        assert gain(before).abs().max() < 0.1
        # after: the input passed through, at about its level, on examples it was not fitted on
        assert gain(after).min() > 0.6 and gain(after).max() < 1.2


# ------------------------------------------------------------- official MANNER checkpoints
# sekd name -> official name, written from the official module tree (src/models.py,
# src/conv_modules.py, src/attention.py of github.com/winddori2002/MANNER), independently of
# the importer's rules (which go the other way, as regular expressions).
_TO_OFFICIAL = [
    ("in_conv.", "in_conv."),
    ("out_conv.", "out_conv.0."),
    ("bottleneck.", "linear.0."),
    ("mask_tanh.", "mask_gate.output.0."),
    ("mask_sigmoid.", "mask_gate.output_gate.0."),
    ("mask_out.0.", "mask_gate.mask.0."),
    (".down.", ".down_conv."),
    (".up.", ".up_conv."),
    (".rescon.pointwise_glu.0.", ".conv_block.point_conv1.0.conv."),
    (".rescon.pointwise_glu.1.", ".conv_block.point_conv1.1."),
    (".rescon.depthwise.0.", ".conv_block.depth_conv.0.conv."),
    (".rescon.depthwise.1.", ".conv_block.depth_conv.1."),
    (".rescon.pointwise.0.", ".conv_block.point_conv2.0.conv."),
    (".rescon.pointwise.1.", ".conv_block.point_conv2.1."),
    (".rescon.project.0.", ".conv_block.conv.conv."),
    (".rescon.project.1.", ".conv_block.conv.bn."),
    (".rescon.shortcut.0.", ".conv_block.shortcut.conv."),
    (".rescon.shortcut.1.", ".conv_block.shortcut.bn."),
    *[(f".attention.branches.{k}.0.", f".attn_block.in_branch{k}.conv.") for k in range(3)],
    *[(f".attention.branches.{k}.1.", f".attn_block.in_branch{k}.bn.") for k in range(3)],
    (".attention.channel_mlp.", ".attn_block.channel_attn.fc."),
    (".attention.global_attn.query.", ".attn_block.global_attn.w_qs."),
    (".attention.global_attn.key.", ".attn_block.global_attn.w_ks."),
    (".attention.global_attn.value.", ".attn_block.global_attn.w_vs."),
    (".attention.global_attn.out.", ".attn_block.global_attn.fc."),
    (".attention.local_dw.0.", ".attn_block.local_attn.depth_conv.0.conv."),
    (".attention.local_dw.1.", ".attn_block.local_attn.depth_conv.1."),
    (".attention.local_map.0.", ".attn_block.local_attn.conv.conv."),
    (".attention.local_map.1.", ".attn_block.local_attn.conv.bn."),
    *[(f".attention.outputs.{k}.0.", f".attn_block.out_branch{k}.conv.") for k in range(3)],
    *[(f".attention.outputs.{k}.1.", f".attn_block.out_branch{k}.bn.") for k in range(3)],
    (".attention.fuse.0.", ".attn_block.conv.conv."),
    (".attention.fuse.1.", ".attn_block.conv.bn."),
    (".attention.shortcut.0.", ".attn_block.shortcut.conv."),
    (".attention.shortcut.1.", ".attn_block.shortcut.bn."),
    (".attention.gate_tanh.", ".attn_block.output_tanh.0."),
    (".attention.gate_sigmoid.", ".attn_block.output_sigmoid.0."),
    (".attention.gate_out.0.", ".attn_block.gate_conv.0."),
]


def _official_layout(model, prefix="manner_block."):
    out = {}
    for k, v in model.state_dict().items():
        name = k
        for a, b in _TO_OFFICIAL:
            if a in name and (not a[0].isalpha() or name.startswith(a)):
                name = name.replace(a, b, 1)
                break
        out[prefix + name] = v.clone()
    return out


@pytest.mark.parametrize("preset", ["manner_b", "manner_s_38gf", "tiny_teacher", "tiny_student"])
def test_import_official_manner_maps_every_key(preset):
    from sekd.models.official import convert_official, sekd_key

    torch.manual_seed(1)
    src = build(preset).eval()
    official = _official_layout(src)
    assert len(official) == len(src.state_dict())
    # every official key has exactly one sekd name, and they are all different
    names = [sekd_key(k) for k in official]
    assert None not in names and len(set(names)) == len(names)
    ckpt = {"loss": 3.2, "state_dict": official, "optimizer": {"state": {}, "param_groups": []}}
    model = convert_official(ckpt, preset)
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    if preset.startswith("tiny"):
        x = torch.randn(1, 1, 6000)
        with torch.no_grad():
            torch.testing.assert_close(model(x), src(x))


def test_import_official_manner_cli_and_clear_errors(tmp_path):
    import subprocess
    import sys

    from sekd.models.official import NotOfficialMannerError, convert_official

    torch.manual_seed(2)
    src = build("tiny_teacher").eval()
    # DataParallel-saved official checkpoints carry a module. prefix
    torch.save({"state_dict": _official_layout(src, "module.manner_block.")}, tmp_path / "o.pth")
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "import-manner", str(tmp_path / "o.pth"), "--preset",
         "tiny_teacher", "--out", str(tmp_path / "teacher.pt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    model = load_model(tmp_path / "teacher.pt")
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # not an official checkpoint: the keys that do not fit are named
    with pytest.raises(NotOfficialMannerError, match=r"2 key\(s\) outside.*decoder\.bias"):
        convert_official(
            {"encoder.weight": torch.zeros(1), "decoder.bias": torch.zeros(1)}, "tiny_teacher"
        )  # noqa: E501
    official = _official_layout(src)
    with pytest.raises(ValueError, match=r"depth 4, hidden 8.*preset 'tiny_student' has depth 3"):
        convert_official(official, "tiny_student")
    del official["manner_block.linear.0.weight"]
    with pytest.raises(NotOfficialMannerError, match=r"missing: bottleneck.weight"):
        convert_official(official, "tiny_teacher")
    r = subprocess.run(
        [sys.executable, "-m", "sekd", "import-manner", str(tmp_path / "o.pth"), "--preset",
         "tiny_teacher", "--out", str(tmp_path / "teacher.pt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "exists" in r.stderr
