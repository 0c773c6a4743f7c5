"""torch.hub entry points for the committed CPU-scale models:

    model = torch.hub.load("path/to/sekd", "mvat_kd_student", source="local")

Each returns the model in eval mode; its docstring (the same text as `sekd.describe(name)`) says
how it was trained and its scores, read from the repository.
"""

from sekd.hub import describe, pretrained

dependencies = ["torch", "numpy", "scipy", "soundfile"]


def teacher():
    return pretrained("teacher")


def baseline_student():
    return pretrained("baseline_student")


def mvat_student():
    return pretrained("mvat_student")


def mvat_kd_student():
    return pretrained("mvat_kd_student")


def snr_s2():
    return pretrained("snr_s2")


for _entry in (teacher, baseline_student, mvat_student, mvat_kd_student, snr_s2):
    _entry.__doc__ = describe(_entry.__name__)
