"""The README's in-CT figure: a real CT, a node painted into its fat, the CT before and after, one window.

    python -m experiments.inct_figure --ct example_ct.nii.gz --totalseg example_seg_total.nii.gz \
        --out Resources/inct_before_after.png [--iterations 1000]

An LN-DDPM (`tiny` at 16³) is trained here on that CT with two nodes painted near its vessels (a user's own
training case), then paints a new node into the CT without them (`diffusion/sample/inpaint.py`). The figure
shows the axial slice through the node at W400/L40 before, after, and their difference, and its title carries
the measured node and rim HU and the seam figures (`seam_contrast`), so it shows what the model does, not what
it should do. The figures also go to `<results>/inct_figure.json`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from experiments import RESULTS_DIR


def _train(ct_path: str, totalseg_path: str, root: Path, iterations: int):  # noqa: ANN202 - (arrays, model)
    import torch

    from LNSynthLib.anatomy.groups import totalseg_to_anatomy
    from LNSynthLib.cases import Case, save_case
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.process.schedule import Schedule
    from LNSynthLib.diffusion.sample.sampling import load_model
    from LNSynthLib.diffusion.train.training import train
    from LNSynthLib.phantom.painted import paint_nodes_near_vessels
    from LNSynthLib.prepare import prepare_volumes
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    ct = read_volume(ct_path)
    anatomy = Volume(totalseg_to_anatomy(read_volume(totalseg_path).array.astype(np.int32), ct.array), ct.geometry)
    painted, ln = paint_nodes_near_vessels(ct, anatomy, n_nodes=2, radius_mm=6.0, seed=1)
    p_ct, p_anatomy, p_ln, meta = prepare_volumes(painted, anatomy, ln, PreprocessSettings.train())
    save_case(Case("real_000", p_ct, p_anatomy, p_ln, {**meta, "case_id": "real_000", "synthetic": False}),
              root / "cases")
    plain, plain_anatomy, _, _ = prepare_volumes(ct, anatomy, ln, PreprocessSettings.train())
    torch.set_num_threads(1)
    config = load_config("tiny", {"train.patch_size": [16, 16, 16], "train.iterations": iterations,
                                  "train.checkpoint_every": iterations})
    model, config, _ = load_model(train(config, root / "cases", root / "run", device="cpu", progress=False),
                                  torch.device("cpu"))
    return plain.array.astype(np.float32), plain_anatomy.array, plain.geometry, model, Schedule.from_config(config)


def _radiological(image: np.ndarray, direction: tuple[float, ...]) -> np.ndarray:
    """An axial slice as radiologists read it: anterior up, the patient's right on the viewer's left (LPS)."""
    if direction[4] < 0:   # rows run toward anterior
        image = image[::-1]
    if direction[0] < 0:   # columns run toward the patient's right
        image = image[:, ::-1]
    return image


def _draw(before: np.ndarray, after: np.ndarray, node: np.ndarray, geometry: object, title: str,
          out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = int(np.argmax(node.sum(axis=(1, 2))))
    sx, sy = geometry.spacing[:2]
    direction = tuple(geometry.direction)
    xs, ys = (np.arange(before.shape[2]) + 0.5) * sx, (np.arange(before.shape[1]) + 0.5) * sy
    extent = (0, before.shape[2] * sx, before.shape[1] * sy, 0)
    outline = _radiological(node[z].astype(float), direction)
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.2))
    for ax, image, name in ((axes[0], before[z], "before (the user's CT)"), (axes[1], after[z], "after (in-CT)")):
        ax.imshow(_radiological(image, direction), cmap="gray", vmin=40 - 200, vmax=40 + 200, extent=extent)
        ax.contour(xs, ys, outline, levels=[0.5], colors="yellow", linewidths=0.8)
        ax.set_title(f"{name}, W400/L40")
    diff = axes[2].imshow(_radiological(after[z] - before[z], direction), cmap="coolwarm", vmin=-200, vmax=200,
                          extent=extent)
    axes[2].set_title("after − before (HU): zero outside the region")
    fig.colorbar(diff, ax=axes[2], fraction=0.046)
    cy, cx = (np.argwhere(outline > 0).mean(axis=0) + 0.5) * (sy, sx)
    for ax in axes:   # 60 mm around the node: a node is a few mm across
        ax.set_xlim(cx - 30, cx + 30)
        ax.set_ylim(cy + 30, cy - 30)
        ax.set_xlabel("mm")
    fig.suptitle(title, fontsize=8, wrap=True)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", required=True)
    parser.add_argument("--totalseg", required=True, help="the CT's TotalSegmentator 'total' labels")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--iterations", type=int, default=1000, help="LN-DDPM training iterations (default 1000)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    import torch

    from LNSynthLib.anatomy.groups import BODY
    from LNSynthLib.diffusion.sample.inpaint import seam_contrast, synthesize_nodes
    from LNSynthLib.phantom.painted import paint_nodes_near_vessels
    from LNSynthLib.volumes.geometry import Volume

    with tempfile.TemporaryDirectory(prefix="lnsynth_inct_figure_") as tmp:
        ct, anatomy, geometry, model, schedule = _train(args.ct, args.totalseg, Path(tmp), args.iterations)
    # A new node in visceral fat near a vessel, where the training nodes were painted (another seed).
    _, new_node = paint_nodes_near_vessels(Volume(ct, geometry), Volume(anatomy, geometry), n_nodes=1, radius_mm=3.0,
                                           seed=7, node_hu=None)
    node = new_node.array > 0
    result = synthesize_nodes(model, schedule, ct, anatomy, node.astype(np.uint8), node.astype(np.uint8),
                              patch=(16, 16, 16), margin_voxels=2, sampler="dpmpp", steps=5, eta=0.0,
                              generator=torch.Generator().manual_seed(0), border_voxels=2)
    seam = seam_contrast(result.ct_hu, result.region, (anatomy == BODY) & (ct < -30) & ~node)
    figures = {"iterations": args.iterations, "node_hu": float(result.ct_hu[node].mean()),
               "rim_hu": float(result.ct_hu[result.region & ~node].mean()), "fat_before_hu": float(ct[node].mean()),
               "unchanged_outside": bool((result.ct_hu[~result.region] == ct[~result.region]).all()), **seam}
    title = (f"LN-DDPM tiny 16³, {args.iterations} iterations on this CT;\nnew node {figures['node_hu']:.0f} HU in fat "
             f"of {figures['fat_before_hu']:.0f} HU, generated rim {figures['rim_hu']:.0f} HU; step across the "
             f"region's border {seam['across_hu']:.1f} HU vs {seam['expected_hu']:.1f} HU expected without a seam; "
             f"outside the region unchanged: {figures['unchanged_outside']}")
    _draw(ct, result.ct_hu, node, geometry, title, args.out)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "inct_figure.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
