"""Benchmark every denoiser on synthetic noisy/clean pairs: PSNR and SSIM gain, and time.

The pairs come from :func:`tools.synthetic.noisy_clean_pair` (synthetic nuclei, Poisson shot
noise plus Gaussian read noise) at a few photon counts: the lower, the noisier. Every method
runs with its defaults, as a user who names no parameter would get it. The gain is the PSNR
(dB) and SSIM of the result against the clean image minus those of the noisy input.

Run ``python -m evals.toolbench.denoise`` (add ``--no-n2v`` to skip the minute-long
Noise2Void training per image); prints a table and writes ``results/toolbench/denoise.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evals.toolbench.results import machine, save_json
from tools.denoise import (
    denoise_auto,
    denoise_bilateral,
    denoise_n2v,
    denoise_nlm,
    denoise_tv,
    denoise_wavelet,
)
from tools.filters import gaussian_blur, median_filter
from tools.synthetic import noisy_clean_pair

PHOTONS = (5.0, 20.0, 100.0)
"""Photons at clean intensity 1: very noisy, noisy, mildly noisy."""


def methods(with_n2v: bool) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Every denoising method, called with its defaults."""
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "gaussian_blur (sigma 1)": lambda x: gaussian_blur(x, sigma=1.0),
        "median_filter (radius 1)": lambda x: median_filter(x, radius=1),
        "denoise_nlm": denoise_nlm,
        "denoise_tv": denoise_tv,
        "denoise_bilateral": denoise_bilateral,
        "denoise_wavelet": denoise_wavelet,
        "denoise_auto": lambda x: denoise_auto(x)[0],
    }
    if with_n2v:
        table["denoise_n2v"] = denoise_n2v
    return table


def run(size: int, seeds: int, with_n2v: bool) -> dict[str, object]:
    """Score every method on every pair; returns the JSON-ready results."""
    rows = []
    for photons in PHOTONS:
        pairs = [noisy_clean_pair((size, size), photons=photons, seed=s) for s in range(seeds)]
        base_psnr = [peak_signal_noise_ratio(p.clean, p.noisy, data_range=1.0) for p in pairs]
        base_ssim = [structural_similarity(p.clean, p.noisy, data_range=1.0) for p in pairs]
        for name, method in methods(with_n2v).items():
            gains_psnr, gains_ssim, seconds = [], [], []
            for pair, bp, bs in zip(pairs, base_psnr, base_ssim, strict=True):
                start = time.perf_counter()
                out = method(pair.noisy)
                seconds.append(time.perf_counter() - start)
                gains_psnr.append(peak_signal_noise_ratio(pair.clean, out, data_range=1.0) - bp)
                gains_ssim.append(structural_similarity(pair.clean, out, data_range=1.0) - bs)
            rows.append({
                "photons": photons,
                "method": name,
                "noisy_psnr_db": float(np.mean(base_psnr)),
                "noisy_ssim": float(np.mean(base_ssim)),
                "psnr_gain_db": float(np.mean(gains_psnr)),
                "ssim_gain": float(np.mean(gains_ssim)),
                "seconds_per_image": float(np.median(seconds)),
            })
    return {
        "benchmark": "denoise",
        "image": f"synthetic nuclei {size}x{size}, Poisson-Gaussian noise (read noise 1 e-)",
        "seeds": seeds,
        "machine": machine(),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seeds", type=int, default=2, help="images per noise level")
    parser.add_argument("--no-n2v", action="store_true", help="skip Noise2Void training")
    parser.add_argument("--out", default="results/toolbench/denoise.json")
    args = parser.parse_args(argv)
    results = run(args.size, args.seeds, with_n2v=not args.no_n2v)
    table = RichTable(title=f"Denoising: gain over the noisy input ({results['image']})")
    for column in ("photons", "noisy PSNR", "method", "PSNR gain dB", "SSIM gain", "s/image"):
        table.add_column(
            column, justify="left" if column == "method" else "right", no_wrap=True
        )
    for row in results["rows"]:
        table.add_row(
            f"{row['photons']:g}", f"{row['noisy_psnr_db']:.1f}", row["method"],
            f"{row['psnr_gain_db']:+.2f}", f"{row['ssim_gain']:+.3f}",
            f"{row['seconds_per_image']:.2f}",
        )
    Console().print(table)
    save_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
