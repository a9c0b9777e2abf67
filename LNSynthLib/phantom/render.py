"""Render the phantom's tissue map to HU: per-tissue/per-structure means, smooth texture, PSF, CT noise.

Order follows image formation: the object (means + anatomical texture) is blurred by the
scanner's point-spread function and the voxel footprint (partial volume: a voxel on an edge
gets the mix of both sides), then noise shaped like CT noise is added. The noise is white noise
filtered in-plane to a filtered-back-projection noise-power spectrum NPS(f) ∝ f·exp(−f²/fc²)
(ramp times apodisation: no power at zero frequency, a peak at mid frequencies, so neighbouring
voxels are positively correlated and voxels ~2–3 mm apart slightly negatively), and along z by
the slice profile. All numbers are in `parameters`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from LNSynthLib.phantom import parameters as P
from LNSynthLib.phantom.canvas import Canvas


def render_hu(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """HU volume (float32) of the painted canvas."""
    mean, amp = P.hu_tables()
    ct = _smooth_noise(canvas.shape, rng, cell_mm=P.TEXTURE_CELL_MM, spacing=canvas.spacing)
    ct *= amp[canvas.tissue]
    base = mean[canvas.tissue]
    for box, mask, hu in canvas.hu_overrides:
        base[box][mask] = hu
    ct += base
    del base
    ndimage.gaussian_filter(ct, sigma=psf_sigma_voxels(canvas.spacing), truncate=2.5, output=ct)
    noise = ct_noise(canvas.shape, canvas.spacing, rng)
    noise *= np.float32(P.NOISE_SD_HU)
    ct += noise
    return ct


def psf_sigma_voxels(spacing_xyz: tuple[float, float, float]) -> tuple[float, float, float]:
    """Gaussian σ (z, y, x voxels): scanner PSF (in-plane) / slice profile (z), combined with the voxel footprint.

    A voxel averages over its own width (a box of variance 1/12 voxel²), which is what makes edges
    partial-volume even where the PSF is narrower than a voxel.
    """
    sx, sy, sz = spacing_xyz
    fwhm = (P.SLICE_FWHM_MM, P.PSF_FWHM_MM, P.PSF_FWHM_MM)
    return tuple(float(np.sqrt((f * P.FWHM_TO_SIGMA / s) ** 2 + 1.0 / 12.0))
                 for f, s in zip(fwhm, (sz, sy, sx), strict=True))


def ct_noise(shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float],
             rng: np.random.Generator) -> np.ndarray:
    """Unit-SD noise with a CT noise-power spectrum in-plane and the slice profile's correlation along z."""
    from scipy import fft

    nz, ny, nx = shape_zyx
    sx, sy, sz = spacing_xyz
    fy = fft.fftfreq(ny, sy)[:, None]
    fx = fft.rfftfreq(nx, sx)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    fc = np.sqrt(2.0) * P.NPS_PEAK_PER_MM        # NPS ∝ f·exp(−f²/fc²) peaks at fc/√2
    amplitude = np.sqrt(f * np.exp(-(f / fc) ** 2)).astype(np.float32)
    out = np.empty(shape_zyx, dtype=np.float32)
    step = P.NOISE_SLICES_PER_CHUNK
    for z0 in range(0, nz, step):
        white = rng.standard_normal((min(step, nz - z0), ny, nx), dtype=np.float32)
        spectrum = fft.rfft2(white, workers=-1)
        spectrum *= amplitude
        out[z0:z0 + step] = fft.irfft2(spectrum, s=(ny, nx), workers=-1)
    sigma_z = P.SLICE_FWHM_MM * P.FWHM_TO_SIGMA / sz
    ndimage.gaussian_filter1d(out, sigma_z, axis=0, truncate=3.0, output=out)
    out /= max(float(out[::2, ::4, ::4].std()), 1e-6)
    return out


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, cell_mm: float,
                  spacing: tuple[float, float, float]) -> np.ndarray:
    """Unit-variance noise smooth over ~`cell_mm`: coarse random grid, linearly interpolated up.

    Interpolation is separable (two gathers and a blend per axis), far cheaper than
    `ndimage.zoom` on a 512×512×300 volume.
    """
    spacing_zyx = spacing[::-1]
    coarse_shape = tuple(int(max(2, np.ceil(n * s / cell_mm)) + 1) for n, s in zip(shape, spacing_zyx, strict=True))
    out = rng.standard_normal(coarse_shape).astype(np.float32)
    for axis, (n, c) in enumerate(zip(shape, coarse_shape, strict=True)):
        pos = np.linspace(0.0, c - 1.0, n)
        lo = np.minimum(np.floor(pos).astype(np.intp), c - 2)
        frac = (pos - lo).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
        a, b = np.take(out, lo, axis=axis), np.take(out, lo + 1, axis=axis)
        b -= a
        b *= frac
        a += b
        out = a
    return out / max(float(out[::4, ::4, ::4].std()), 1e-6)
