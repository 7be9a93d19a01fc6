from __future__ import annotations

__all__ = ["render_case_figure"]


def __getattr__(name: str):
    # matplotlib is optional: import the figure code only when it is asked for
    if name == "render_case_figure":
        from .figures import render_case_figure

        return render_case_figure
    raise AttributeError(name)
