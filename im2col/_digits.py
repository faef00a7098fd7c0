"""The digit "3" drawn by code: the teaching layer's picture, the same for everyone on every run.

The digit is a pen stroke — two bowls of a "3", slanted a little as handwriting is — rendered with
a soft-edged round pen onto a 28×28 grid, white on black with values in [0, 1] like MNIST seen
through fastai's ``PILImageBW``. :func:`digit_batch` writes it 64 times with small seeded random
changes; :func:`ascii_art` prints any such picture as text. Re-exported by :mod:`im2col.data`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _stroke(
    *,
    shift: tuple[float, float] = (0.0, 0.0),
    slant: float = 0.18,
    scale: float = 1.0,
    angle: float = 0.0,
    upper: tuple[float, float, float] = (-155.0, 125.0, 1.0),
    lower: tuple[float, float, float] = (-125.0, 150.0, 1.0),
) -> np.ndarray:
    """Points (n, 2) as (row, col) along the pen path of a "3" centred on a 28×28 grid.

    ``upper`` and ``lower`` are (start angle, end angle, width factor) of the two bowls, in degrees
    measured clockwise on screen from the rightward direction (so −90° is the top of a bowl).
    """
    pieces = []
    # Upper bowl: centre (row 9.6, col 14), from its upper left, over the top, round to the middle.
    for (start, stop, wide), (cy, cx, ry, rx) in (
        (upper, (9.6, 13.8, 4.9, 5.2)),
        (lower, (18.6, 14.2, 5.6, 6.0)),
    ):
        t = np.radians(np.linspace(start, stop, 64))
        pieces.append(np.stack([cy + ry * np.sin(t), cx + wide * rx * np.cos(t)], axis=1))
    pts = np.concatenate(pieces)
    centre = np.array([14.0, 14.0])
    rel = pts - centre
    rel[:, 1] -= slant * rel[:, 0]  # handwriting leans right: higher rows move right
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return centre + scale * rel @ rot.T + np.asarray(shift)


def _render(points: np.ndarray, size: int, pen: float, softness: float = 1.1) -> np.ndarray:
    """Ink of a round pen of radius ``pen`` dragged along ``points``, on a size×size grid."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([rows.ravel(), cols.ravel()], axis=1)  # (size², 2)
    # Distance from each pixel centre to the nearest point of the densely sampled path.
    d = np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(axis=1)
    ink = np.clip((pen + softness - d) / softness, 0.0, 1.0)
    return ink.reshape(size, size).astype(np.float32)


def digit_three(size: int = 28) -> np.ndarray:
    """A handwritten-looking digit "3", drawn by code.

    Parameters
    ----------
    size : int, default 28
        Side of the square image in pixels (the drawing is scaled from MNIST's 28).

    Returns
    -------
    ndarray, shape (size, size), float32
        Ink in [0, 1]: 0 is the black background, 1 the white stroke.

    Examples
    --------
    >>> from im2col import data
    >>> print(data.ascii_art(data.digit_three()[3:26, 5:23]))
             :--.
           =#@@@@#-
         .#@@@@@@@@=
        .#@@@%**%@@@:
        *@@@=   .#@@+
        *@@-     -@@#
        .+-      :@@#
                 -@@*
                .#@@=
         :=*#%%##@@%.
        .%@@@@@@@@@-
        :@@@@@@@@@@-
         #%@@@@@#@@#
           -==-:.%@@:
                 +@@=
                 +@@=
                 #@@-
      =+.       -@@@.
     -@@+      :%@@+
     :@@@+.  .=@@@%.
      +@@@%##@@@@%:
       *@@@@@@@@#:
        =#@@@@*=
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"digit_three(): argument 'size' must be an int ≥ 8, got {size!r}")
    points = _stroke()
    if size != 28:
        points = points * (size / 28)
    img = _render(points, int(size), pen=0.95 * size / 28)
    return img / img.max()


def digit_batch(n: int = 64, seed: int = 0, size: int = 28) -> np.ndarray:
    """The blog post's batch: ``n`` handwritten-looking 3s, each a little different.

    Each image redraws the "3" of :func:`digit_three` with seeded random changes: a shift of up to
    2 pixels, slant, rotation of up to 8°, size ±10 %, stroke width, and where each bowl starts and
    ends. The same ``seed`` gives the same batch on every machine.

    Parameters
    ----------
    n : int, default 64
        Number of images (the blog post's fastai batch size is 64).
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`.
    size : int, default 28

    Returns
    -------
    ndarray, shape (n, 1, size, size), float32
        Values in [0, 1]; the layout (N, C, H, W) with one channel, as the blog post's ``xb``.

    Examples
    --------
    >>> from im2col import data
    >>> xb = data.digit_batch()
    >>> xb.shape, xb.dtype
    ((64, 1, 28, 28), dtype('float32'))
    >>> bool((data.digit_batch(seed=1) == data.digit_batch(seed=1)).all())
    True
    """
    for name, value, low in (("n", n, 0), ("seed", seed, 0), ("size", size, 8)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"digit_batch(): argument '{name}' must be an int ≥ {low}, got {value!r}")
    return _digit_batch(int(n), int(seed), int(size)).copy()


@lru_cache(maxsize=4)
def _digit_batch(n: int, seed: int, size: int) -> np.ndarray:
    # Cached (the demo, the notebook and the tests ask for the same batch); callers get a copy.
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for k in range(n):
        u = rng.uniform
        points = _stroke(
            shift=(u(-2, 2), u(-2, 2)),
            slant=u(0.0, 0.35),
            scale=u(0.9, 1.1),
            angle=u(-8, 8),
            upper=(u(-175, -140), u(110, 135), u(0.85, 1.15)),
            lower=(u(-135, -110), u(135, 170), u(0.85, 1.15)),
        )
        img = _render(points * (size / 28), size, pen=u(0.7, 1.3) * size / 28)
        out[k, 0] = img / img.max()
    return out


def ascii_art(image: np.ndarray) -> str:
    """A 2-D array of values in [0, 1] as text, one character per pixel (`` .:-=+*#%@``).

    Examples
    --------
    >>> import numpy as np
    >>> from im2col import data
    >>> print(data.ascii_art(np.array([[0.0, 0.5, 1.0]])))
     =@
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"ascii_art(): argument 'image' must be 2-D (H, W), got shape {a.shape}")
    ramp = " .:-=+*#%@"
    idx = np.clip(np.rint(a * (len(ramp) - 1)), 0, len(ramp) - 1).astype(int)
    return "\n".join("".join(ramp[i] for i in row).rstrip() for row in idx)
