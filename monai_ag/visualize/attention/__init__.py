"""Attention maps as pictures: the CT with each gated level's attention overlaid, axial and coronal.

Run ``python -m monai_ag.visualize.attention --help`` (``__main__.py`` calls
:py:func:`~monai_ag.visualize.attention.figure.main`). Needs matplotlib (``pip install monai-ag[plot]``), imported
where used. The same figure is logged to TensorBoard at every validation by
:py:class:`monai_ag.handlers.AttentionImageHandler`.

The attention maps of a case come from the bundle's inference with ``--save_attention_maps true``
(``<case>_attention.nii.gz``: gated levels x heads channels on the image's grid) or from
:py:meth:`monai_ag.networks.nets.GridAttentionUNet.attention_maps`.
"""

from __future__ import annotations

from .figure import attention_figure, figure_to_array, main, render_attention, split_levels

__all__ = ["attention_figure", "figure_to_array", "main", "render_attention", "split_levels"]
