"""Notebook 08's listening room: pick an utterance, a noise, an SNR and a student; hear noisy,
teacher, student and clean side by side over their waveforms and spectrograms.

The controls sit on top and every selection renders into one output below them (an IPython
display updated in place), so a static export shows the default selection and a live kernel
replaces it on each change; the conclusion under it follows the selection too."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch

from ..data import mix, read_audio
from ..viz import players, plot_signals
from .verdicts import listening_sentence

SEGMENT = 64_000  # the first 4 s of an utterance


class ListeningRoom:
    """`models`: {"teacher": model, student name: model, ...}; `utterances` / `noises`: corpus
    entries (`Corpus.select`); `seed`: the noise segment of the mixture; `on_figure(fig)` is
    called with each selection's figure (to save it)."""

    def __init__(self, models, utterances, noises, student: str, seed: int = 0, on_figure=None):
        import ipywidgets as widgets

        self.models, self.utterances, self.noises = models, utterances, noises
        self.seed, self.on_figure = seed, on_figure
        students = [name for name in models if name != "teacher"]
        if student not in students:
            raise ValueError(f"student {student!r} is not one of {students}")
        self.utterance = widgets.Dropdown(
            options=[(f.name, i) for i, f in enumerate(utterances)], description="utterance"
        )
        self.noise = widgets.Dropdown(
            options=[(f.noise_type, i) for i, f in enumerate(noises)], description="noise"
        )
        self.snr = widgets.FloatSlider(5.0, min=-5.0, max=20.0, step=2.5, description="SNR (dB)")
        self.student = widgets.Dropdown(options=students, value=student, description="student")
        self.controls = widgets.VBox(
            [widgets.HBox([self.utterance, self.noise]), widgets.HBox([self.snr, self.student])]
        )
        self.view = self.said = None
        self.signals = self.selection()

    def title(self) -> str:
        u, n = self.utterances[self.utterance.value], self.noises[self.noise.value]
        return (
            f"{u.name} + {n.noise_type} at {self.snr.value:g} dB: teacher and {self.student.value}"
        )

    def selection(self) -> dict:
        """{noisy, teacher, <student>, clean} signals of the current selection."""
        clean = read_audio(self.utterances[self.utterance.value].path)[:SEGMENT]
        noise = read_audio(self.noises[self.noise.value].path)
        m = mix(clean, noise, self.snr.value, np.random.default_rng(self.seed))
        x = torch.from_numpy(m.mixture)[None, None]
        with torch.no_grad():
            teacher = self.models["teacher"](x)[0, 0].numpy()
            student = self.models[self.student.value](x)[0, 0].numpy()
        return {"noisy": m.mixture, "teacher": teacher, self.student.value: student,
                "clean": m.clean}  # fmt: skip

    def output(self):
        """The players and the figure of the current selection, as one HTML output."""
        import matplotlib.pyplot as plt
        from IPython.display import HTML

        fig = plot_signals(self.signals, self.title())
        if self.on_figure:
            self.on_figure(fig)
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)  # shown once, inside this output, not again by the inline backend
        image = base64.b64encode(png.getvalue()).decode()
        img = (
            f"<img alt='{self.title()}' style='max-width:100%' src='data:image/png;base64,{image}'>"
        )
        return HTML(players(self.signals).data + img)

    def conclusion(self):
        from IPython.display import Markdown

        return Markdown(listening_sentence(self.student.value, self.signals))

    def show(self) -> None:
        """Display the controls and, below them, the selection; re-render on every change."""
        from IPython.display import display

        display(self.controls)
        self.view = display(self.output(), display_id=True)
        for control in (self.utterance, self.noise, self.snr, self.student):
            control.observe(self.render, names="value")

    def show_conclusion(self) -> None:
        from IPython.display import display

        self.said = display(self.conclusion(), display_id=True)

    def render(self, *_) -> None:
        self.signals = self.selection()
        self.view.update(self.output())
        if self.said is not None:
            self.said.update(self.conclusion())
