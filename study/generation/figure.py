"""The paper's qualitative figure: one region cropped across chosen methods, labelled, with
PSNR/SSIM under each crop. Pure numpy + matplotlib: arrays in, PNG or PDF bytes out."""

import io

import numpy as np

FORMATS = {"png": "image/png", "pdf": "application/pdf"}


def qualitative_figure(panels, fmt="png", dpi=150):
    """Render crops side by side.

    Parameters
    ----------
    panels : list of (label, crop, caption)
        ``crop`` an HxWx3 uint8 array (all the same size), ``caption`` the line under it
        (e.g. "27.83 dB / 0.7821"), ``label`` the title above it.
    fmt : {"png", "pdf"}
    dpi : int
        Resolution of a PNG; crops are drawn with nearest-neighbour sampling (no smoothing),
        each at least 2 inches wide.

    Returns
    -------
    bytes
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}: png or pdf")
    if not panels:
        raise ValueError("choose at least one method for the figure")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    height, width = panels[0][1].shape[:2]
    panel_w = max(2.0, width / dpi)
    panel_h = panel_w * height / width
    fig = Figure(figsize=(panel_w * len(panels), panel_h + 0.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, crop, caption) in zip(axes, panels, strict=True):
        ax.imshow(np.asarray(crop), interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(caption, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.14, wspace=0.04)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()
