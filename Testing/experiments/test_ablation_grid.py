"""`python -m experiments ablation`: the grid (every cell a valid config), resume (finished cells are skipped), the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from experiments.ablation_grid import Cell, full_grid, render_table, result_path, run_grid, select_cells
from LNSynthLib.diffusion.config import load_config
from LNSynthLib.errors import UsageError

METRICS = ("DSC", "NodeRecall")


def test_grid_covers_the_paper_tables_and_the_open_choices() -> None:
    grid = full_grid()
    names = [c.name for c in grid]
    assert names == ["real", "conditioning-conditional", "conditioning-gscond_ln_only", "conditioning-ln_ddpm",
                     "conditioning-med_ddpm", "conditioning-mask_guided", "conditioning-edge_guided", "multiple-5x",
                     "multiple-10x", "multiple-20x", "realsynt-med_ddpm", "transforms-off", "attention-LA",
                     "attention-GA", "ld_gate-fraction", "ld_gate-nearest", "placement-middle"]
    # Table 4a and Table 2's Real + Synt rows train on real and synthetic cases (paper 000 §5.3.2), Real on real
    strategies = {c.name: c.strategy for c in grid}
    assert {n for n, s in strategies.items() if s == "real+synt"} == {"multiple-5x", "multiple-10x", "multiple-20x",
                                                                      "realsynt-med_ddpm"}
    assert strategies["real"] == "real" and strategies["conditioning-ln_ddpm"] == "synt"
    for cell in grid:   # every cell is a config the loader accepts, at CPU and at paper size
        for base in ("tiny", "paper"):
            config = load_config(base, cell.overrides)
            for key, value in cell.overrides.items():
                assert config.get(key) == value
    shared = {c.name for c in grid if c.model_key == "base"}
    assert shared == {"real", "conditioning-ln_ddpm", "multiple-5x", "multiple-10x", "multiple-20x", "transforms-off"}
    assert {c.multiple for c in grid} == {0, 5, 10, 20} and [c.transforms for c in grid].count(False) == 1
    assert [c.name for c in select_cells(grid, ["attention-GA", "multiple-5x"])] == ["multiple-5x", "attention-GA"]
    with pytest.raises(UsageError, match="attention-XX"):
        select_cells(grid, ["attention-XX"])


def fake_metrics(cell: Cell, seed: int) -> dict[str, Any]:
    return {"segmentation": {"DSC": 0.5 + 0.01 * len(cell.name) + seed, "NodeRecall": 1.0}}


def test_run_grid_skips_finished_cells_and_reruns_missing_ones(tmp_path: Path) -> None:
    cells = select_cells(full_grid(), ["conditioning-ln_ddpm", "transforms-off", "attention-GA"])
    calls: list[str] = []

    def runner(cell: Cell, seed: int, folder: Path) -> dict[str, Any]:
        assert folder == result_path(tmp_path, cell, seed).parent
        calls.append(f"{cell.name}/{seed}")
        return fake_metrics(cell, seed)

    results, ran = run_grid(cells, [0, 1], tmp_path, runner)
    assert len(calls) == 6 and len(ran) == 6 and len(results) == 6
    stored = json.loads(result_path(tmp_path, cells[1], 1).read_text())
    assert stored["seed"] == 1 and stored["cell"]["transforms"] is False and "segmentation" in stored

    calls.clear()
    again, ran = run_grid(cells, [0, 1], tmp_path, runner)
    assert calls == [] and ran == [] and again == results          # everything finished: nothing reruns
    result_path(tmp_path, cells[2], 0).unlink()                     # an interrupted cell
    again, ran = run_grid(cells, [0, 1], tmp_path, runner)
    assert calls == ["attention-GA/0"] and ran == ["attention-GA_seed0"] and again == results

    def failing(cell: Cell, seed: int, folder: Path) -> dict[str, Any]:
        raise RuntimeError("nnU-Net died")

    # A result of an older grid (same name, another cell: Synt-only where the cell is now Real + Synt) reruns.
    stored = json.loads(result_path(tmp_path, cells[0], 0).read_text())
    stored["cell"] = {**stored["cell"], "strategy": "real+synt"}
    result_path(tmp_path, cells[0], 0).write_text(json.dumps(stored))
    calls.clear()
    again, ran = run_grid(cells, [0, 1], tmp_path, runner)
    assert calls == ["conditioning-ln_ddpm/0"] and again == results

    result_path(tmp_path, cells[0], 1).unlink()
    with pytest.raises(RuntimeError):
        run_grid(cells, [0, 1], tmp_path, failing)
    assert not result_path(tmp_path, cells[0], 1).exists(), "a failed cell leaves no result behind"


def test_table_is_shaped_like_tables_3_and_4() -> None:
    cells = select_cells(full_grid(), ["conditioning-conditional", "conditioning-ln_ddpm", "multiple-5x",
                                       "multiple-10x", "attention-GA"])
    results = [{"cell": c.__dict__, "seed": s, **fake_metrics(c, s)} for c in cells for s in (0, 1)]
    table = render_table(results, METRICS)
    blocks = table.split("### ")[1:]
    assert [b.splitlines()[0] for b in blocks] == [
        "Conditioning, Synt-only (Table 3; Med-DDPM: Table 2; mask/edge-guided: paper 002)",
        "Synthetic cases per real case, Real + Synt (Table 4a)", "LDCond attention (Table 4c)"]
    attention = blocks[2].splitlines()
    assert attention[2] == "| Setting | Seeds | DSC | NodeRecall |"
    base_dsc = (0.5 + 0.01 * len("conditioning-ln_ddpm")) + 0.5           # mean over seeds 0 and 1
    assert attention[4].startswith(f"| LD (base) | 0,1 | {base_dsc:.4g} | 1 |")
    assert attention[5].startswith("| GA | 0,1 |")
    assert blocks[1].splitlines()[4].startswith("| 5× |") and blocks[1].splitlines()[5].startswith("| 10× |")


def test_cli_knows_the_benchmark() -> None:
    from experiments import RESULTS_DIR
    from experiments.__main__ import EXPERIMENTS
    from LNSynthLib.cli.bench_command import benchmark_parser

    parser, module = benchmark_parser("python -m experiments ablation", EXPERIMENTS["ablation"][0], RESULTS_DIR)
    args = parser.parse_args(["--quick", "--seeds", "0", "1", "--cells", "attention-GA"])
    assert args.quick and args.seeds == [0, 1] and args.config == "tiny"
    assert module.budget(args)["nnunet_epochs"] == 1
    quick = select_cells(full_grid(module.budget(args)["multiples"], module.budget(args)["base_multiple"]),
                         module.QUICK_CELLS)
    assert len(quick) == len(module.QUICK_CELLS)   # --quick names cells of its own grid: every paper table
    assert module.budget(parser.parse_args(["--config", "paper"]))["multiples"] == (5, 10, 20)
    cell = select_cells(full_grid(), ["multiple-5x"])[0]
    for config in (["--config", "paper"], []):   # paper cells use PipelineSettings.paper; CPU cells its nnU-Net use
        settings = module.cell_settings(cell, 3, parser.parse_args(config), module.budget(parser.parse_args(config)))
        assert (settings.strategies, settings.synt_per_case, settings.seed, settings.qc) == (("real+synt",), 5, 3, False)
        assert (settings.nnunet_shared_plan, settings.nnunet_real_share, settings.paste_variant) == (False, None, False)


@pytest.mark.slow
def test_one_quick_cell_end_to_end(tmp_path: Path) -> None:
    """One real cell (minutes on a CPU): LN-DDPM, sampling without transforms, Synt-only nnU-Net, metrics, resume."""
    from experiments.__main__ import main
    from LNSynthLib.cases import load_case

    cmd = ["ablation", "--quick", "--cells", "transforms-off", "--work", str(tmp_path / "work"),
           "--results-dir", str(tmp_path / "results"), "--device", "cpu"]
    assert main(cmd) == 0
    payload = json.loads((tmp_path / "results" / "ablation.json").read_text())["results"]
    assert payload["ran_now"] == ["transforms-off_seed0"] and payload["generation"] == {}   # no Real cell
    (result,) = payload["results"]
    assert result["cell"]["transforms"] is False and 0.0 <= result["segmentation"]["DSC"] <= 1.0
    synthetic = sorted((tmp_path / "work" / "models" / "base_seed0" / "synthetic_transforms-off").glob("*_synt_*"))
    assert synthetic and all(load_case(f).meta["transform_applied"] is False for f in synthetic)
    raw = tmp_path / "work" / "cells" / "transforms-off_seed0" / "nnunet" / "nnUNet_raw" / "Dataset104_Synt"
    assert all("_synt_" in p.name for p in (raw / "imagesTr").glob("*.nii.gz"))
    text = (tmp_path / "results" / "ablation.md").read_text()
    assert "### Condition transforms (Table 4b)" in text and "SMOKE RUN: NOT COMPARABLE WITH THE PAPER" in text
    assert "| ✗ | paper | 0.5227 |" in text            # Table 4b in the paper's layout, our row beneath
    assert main(cmd) == 0   # resumed: nothing runs again
    assert json.loads((tmp_path / "results" / "ablation.json").read_text())["results"]["ran_now"] == []
