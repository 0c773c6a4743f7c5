"""`sekd` command line: one subcommand per task; each lives in the module that does the work."""

from __future__ import annotations

import argparse
import json
import sys


def _positive_int(text: str) -> int:
    from .train_cli import positive_int

    return positive_int(text)


def _complexity(args) -> int:
    from .complexity import complexity

    rows = [complexity(p, args.samples).to_dict() for p in args.preset]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        f"{'preset':<16} {'params':>12} {'MACs (paper)':>14} {'true FLOPs':>12}"
        f"  @ {args.samples} samples"
    )
    for r in rows:
        print(
            f"{r['preset']:<16} {r['params']:>12,} {r['macs_paper'] / 1e9:>13.3f}G "
            f"{r['flops'] / 1e9:>11.3f}G"
        )
    return 0


def _enhance(args) -> int:
    from .device import pick_device
    from .enhance import chunk_samples, enhance_files, load_enhancer, plan_outputs

    device = pick_device(args.device)
    chunk_samples(args.chunk_seconds)  # argument errors before the model loads
    plan_outputs(args.input, args.output, args.overwrite, args.skip_existing)
    model = load_enhancer(args.checkpoint)
    written, errors = enhance_files(
        model,
        args.input,
        args.output,
        chunk_seconds=args.chunk_seconds,
        device=device,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
    )
    total = len(written) + len(errors)
    print(f"wrote {len(written)} of {total} file(s) to {args.output}; {len(errors)} failed")
    return 1 if errors else 0


def _import_manner(args) -> int:
    from pathlib import Path

    from .models import load_checkpoint, save_model
    from .models.official import convert_official
    from .outputs import check_outputs

    out = Path(args.out)
    check_outputs([out], args.overwrite, inputs=[args.checkpoint])
    model = convert_official(load_checkpoint(args.checkpoint), args.preset)
    save_model(
        model, out, preset=args.preset, source=f"official MANNER checkpoint {args.checkpoint}"
    )
    print(f"wrote {out}: {args.preset} with the weights of {args.checkpoint}")
    return 0


def _export(args) -> int:
    from pathlib import Path

    from .export import MAX_EXPORT_ERROR, export_onnx
    from .models import load_checkpoint, model_from_checkpoint
    from .outputs import check_outputs

    check_outputs([Path(args.out)], args.overwrite, inputs=[args.checkpoint])
    state = load_checkpoint(args.checkpoint)  # read once: the model and its preset
    model = model_from_checkpoint(state, args.checkpoint)
    preset = state.get("model", state).get("preset", "")  # a training or a model checkpoint
    out, errors = export_onnx(model, args.out, preset, str(args.checkpoint), args.overwrite)
    checks = ", ".join(f"{n / 16_000:.2f} s: {e:.1e}" for n, e in errors.items())
    print(
        f"wrote {out} (opset 18, any length, batch 1); ONNX Runtime vs PyTorch on a real "
        f"file, max abs difference: {checks} (limit {MAX_EXPORT_ERROR:g})"
    )
    return 0


def _prepare_voicebank(args) -> int:
    from .data import prepare_voicebank

    out = prepare_voicebank(args.root, args.out)
    print(f"16 kHz VoiceBank-DEMAND tree in {out} (data.voicebank_root = {str(out)!r})")
    return 0


def _complexity_parser(sub) -> None:
    from .models import preset_names

    p = sub.add_parser(
        "complexity", help="parameters, paper-convention MACs and true FLOPs of presets"
    )
    p.add_argument(
        "--preset",
        nargs="+",
        required=True,
        metavar="NAME",
        help=f"one of: {', '.join(preset_names())}",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=128_000,
        help="input length in samples, >= 1 (default 8 s at 16 kHz)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=_complexity)


def _enhance_parser(sub) -> None:
    p = sub.add_parser("enhance", help="enhance audio files or folders with a checkpoint")
    p.add_argument(
        "--checkpoint", required=True, help="a sekd checkpoint (.pt) or an exported .onnx model"
    )
    p.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="files and/or folders (WAV, FLAC, OGG, MP3, AIFF: what soundfile reads)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="output folder: 16 kHz mono, WAV/FLAC inputs keep their names, other formats "
        "become .wav; it must not hold the inputs or existing outputs (see --overwrite)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="process long files in chunks of S seconds (at least 2.52)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="allow replacing existing files in --output, inputs included",
    )
    mode.add_argument(
        "--skip-existing",
        action="store_true",
        help="enhance only the inputs whose output does not exist yet (finish an interrupted "
        "run; every output is written whole or not at all)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    p.set_defaults(func=_enhance)


def _import_manner_parser(sub) -> None:
    p = sub.add_parser(
        "import-manner",
        help="convert a checkpoint of the official MANNER code into a sekd checkpoint",
    )
    p.add_argument(
        "checkpoint", help="the official .pth (e.g. its released VoiceBank-DEMAND weights)"
    )
    p.add_argument(
        "--preset",
        required=True,
        help="manner_b (MANNER, MA in every layer) or manner_s_38gf (MANNER small)",
    )
    p.add_argument("--out", required=True, help="the sekd checkpoint to write (teacher.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_import_manner)


def _export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a checkpoint to ONNX (checked against PyTorch as it is written)"
    )
    p.add_argument("--checkpoint", required=True, help="a sekd checkpoint (.pt)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_export)


def _prepare_voicebank_parser(sub) -> None:
    p = sub.add_parser(
        "prepare-voicebank",
        help="resample an official 48 kHz VoiceBank-DEMAND download to 16 kHz (once)",
    )
    p.add_argument(
        "root", help="the folder holding clean_trainset_28spk_wav, noisy_testset_wav, ..."
    )
    p.add_argument("--out", required=True, help="the 16 kHz tree to write (kept files are reused)")
    p.set_defaults(func=_prepare_voicebank)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sekd",
        description="Knowledge distillation for speech enhancement (MV-AT, SNR teachers).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _evaluate_parser(sub) -> None:
    from .evaluate_cli import add_parser

    add_parser(sub)


def _train_parser(sub) -> None:
    from .train_cli import add_parser

    add_parser(sub)


def _reproduce_parser(sub) -> None:
    from .study.reproduce import add_parser

    add_parser(sub)


# one function per subcommand, in the order `sekd --help` lists them
SUBCOMMANDS = [
    _complexity_parser,
    _enhance_parser,
    _import_manner_parser,
    _export_parser,
    _prepare_voicebank_parser,
    _evaluate_parser,
    _train_parser,
    _reproduce_parser,
]


def main(argv=None) -> int:
    from .outputs import exit_cleanly_on_sigterm

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    exit_cleanly_on_sigterm()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(
            f"sekd {args.command}: interrupted; files written so far are complete", file=sys.stderr
        )
        return 130
    except (KeyError, ValueError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"sekd {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a run stopped by non-finite values (train.TrainingError)
        print(f"sekd {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
