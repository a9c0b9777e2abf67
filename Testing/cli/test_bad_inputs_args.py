"""Bad-input table, part 2: arguments, output paths and train/test leakage.

Each row runs the real command in-process (see the `refused` fixture): exit 2, `lnsynth: error:`
naming the option or file and the cause, a `Fix:`, no traceback, nothing changed on disk. Values
are checked at parse time (`LNSynthLib.cli.arg_types`), so the other inputs of a row may be
placeholders; the cause named in stderr shows which check answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CT, LN, CASES = "{d}/ct.nii.gz", "{d}/ln.nii.gz", "{d}/prepared"
LONG_NAME = "n" * 240 + ".nii.gz"   # fits the file system, but not with the temporary suffix added


def prepare(*extra: str, out: str = "{t}/out", case_id: str = "c1") -> list[str]:
    return ["prepare", "--ct", CT, "--ln", LN, "--out", out, "--case-id", case_id, "--anatomy-source", "coarse",
            *extra]


def anatomy(out: str) -> list[str]:
    return ["anatomy", "--ct", CT, "--out", out, "--method", "coarse"]


def phantom(*extra: str) -> list[str]:
    return ["phantom", "--out", "{t}/ph", *extra]


def sample(*extra: str, checkpoint: str = "{d}/a_file") -> list[str]:
    return ["sample", "--checkpoint", checkpoint, "--cases", CASES, "--out", "{t}/synt", "--device", "cpu", *extra]


def train(*extra: str, run_dir: str = "{t}/run") -> list[str]:
    return ["train", "--config", "tiny", "--cases", CASES, "--run-dir", run_dir, "--device", "cpu", *extra]


def nn_train(*extra: str) -> list[str]:
    return ["nnunet", "train", "--project", "{t}/proj", "--device", "cpu", *extra]


def export(*extra: str, test: str | None = None, out: str = "{t}/proj") -> list[str]:
    return ["nnunet", "export", "--cases", CASES, "--out", out, *(["--test-cases", test] if test else []), *extra]


def predict(*extra: str, out: str = "{t}/p.nii.gz") -> list[str]:
    return ["nnunet", "predict", "--model", CASES, "--ct", CT, "--out", out, "--device", "cpu", *extra]


def run(*extra: str) -> list[str]:
    return ["run", "--config", "tiny", "--out", "{t}/work", "--device", "cpu", *extra]


def existing(name: str):
    def make(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text("the user's own file")
    return make


# (id, argv, names that must appear, cause that must appear, setup(tmp_path) or None)
CASES_TABLE = [
    ("prepare-case-id-parent", prepare(case_id="../escape"), ["../escape"], "plain folder name", None),
    ("prepare-case-id-slash", prepare(case_id="a/b"), ["a/b"], "plain folder name", None),
    ("prepare-case-id-hidden", prepare(case_id=".hidden"), [".hidden"], "plain folder name", None),
    ("prepare-case-id-too-long", prepare(case_id="c" * 300), ["c" * 40], "plain folder name", None),
    ("prepare-no-overwrite", prepare(), ["{t}/out/c1/ct.nii.gz"], "already exists", existing("out/c1/ct.nii.gz")),
    ("prepare-margin-0", prepare("--margin-mm", "0"), ["--margin-mm"], "greater than 0", None),
    ("prepare-margin-negative", prepare("--margin-mm", "-5"), ["--margin-mm"], "greater than 0", None),
    ("prepare-margin-nan", prepare("--margin-mm", "nan"), ["--margin-mm"], "finite", None),
    ("prepare-margin-inf", prepare("--margin-mm", "inf"), ["--margin-mm"], "finite", None),
    ("prepare-margin-text", prepare("--margin-mm", "ten"), ["--margin-mm"], "not a number", None),
    ("prepare-spacing-0", prepare("--spacing", "0"), ["--spacing"], "greater than 0", None),
    ("prepare-spacing-negative", prepare("--spacing", "-1"), ["--spacing"], "greater than 0", None),
    ("prepare-spacing-nan", prepare("--spacing", "nan"), ["--spacing"], "finite", None),
    ("prepare-out-is-a-file", prepare(out="{d}/a_file"), ["{d}/a_file"], "is a file", None),
    ("prepare-out-inside-a-file", prepare(out="{d}/a_file/sub"), ["a_file"], "is a file", None),
    ("prepare-out-not-writable", prepare(out="/proc/lnsynth_out"), ["/proc"], "cannot write", None),
    ("prepare-out-name-too-long", prepare(out="{t}/" + "d" * 300), ["--out"], "longer than", None),
    ("prepare-missing-arguments", ["prepare", "--ct", CT], ["--ln"], "required", None),
    ("anatomy-out-png", anatomy("{t}/x.png"), ["x.png"], "cannot hold a 3D volume", None),
    ("anatomy-out-jpg", anatomy("{t}/x.jpg"), ["x.jpg"], "cannot hold a 3D volume", None),
    ("anatomy-out-no-extension", anatomy("{t}/anatomy"), ["anatomy"], "cannot hold a 3D volume", None),
    ("anatomy-out-too-long", anatomy("{t}/" + LONG_NAME), ["too long"], "temporary", None),
    ("anatomy-out-exists", anatomy("{t}/a.nii.gz"), ["a.nii.gz"], "already exists", existing("a.nii.gz")),
    ("anatomy-out-is-a-folder", anatomy("{t}"), ["--out"], "is a folder", None),
    ("anatomy-out-not-writable", anatomy("/proc/a.nii.gz"), ["/proc"], "cannot write", None),
    ("anatomy-bad-method", ["anatomy", "--ct", CT, "--out", "{t}/a.nii.gz", "--method", "magic"], ["--method"],
     "invalid choice", None),
    ("phantom-cases-0", phantom("--cases", "0"), ["--cases"], "at least 1", None),
    ("phantom-cases-negative", phantom("--cases", "-2"), ["--cases"], "at least 1", None),
    ("phantom-shape-0", phantom("--shape", "0", "32", "32"), ["--shape"], "at least 1", None),
    ("phantom-shape-text", phantom("--shape", "a", "32", "32"), ["--shape"], "whole number", None),
    ("phantom-shape-two-values", phantom("--shape", "32", "32"), ["--shape"], "expected 3", None),
    ("phantom-spacing-0", phantom("--spacing", "0"), ["--spacing"], "greater than 0", None),
    ("phantom-spacing-nan", phantom("--spacing", "nan"), ["--spacing"], "finite", None),
    ("phantom-spacing-negative", phantom("--spacing", "-1", "1", "1"), ["--spacing"], "greater than 0", None),
    ("phantom-spacing-two-values", phantom("--spacing", "1", "1"), ["--spacing"], "1 or 3 values", None),
    ("phantom-margin-0", phantom("--margin-mm", "0"), ["--margin-mm"], "greater than 0", None),
    ("phantom-figure-jpg", ["phantom", "--figure", "{t}/fig.jpg"], ["fig.jpg"], "not .png", None),
    ("phantom-out-is-a-file", ["phantom", "--out", "{d}/a_file"], ["a_file"], "is a file", None),
    ("sample-steps-0", sample("--steps", "0"), ["--steps"], "at least 1", None),
    ("sample-steps-negative", sample("--steps", "-3"), ["--steps"], "at least 1", None),
    ("sample-n-0", sample("--n", "0"), ["--n"], "at least 1", None),
    ("sample-eta-negative", sample("--eta", "-1"), ["--eta"], "not be negative", None),
    ("sample-shard-out-of-range", sample("--shard", "3/2"), ["--shard"], "0 <= i < n", None),
    ("sample-checkpoint-missing", sample(checkpoint="{d}/none.pt"), ["none.pt"], "not found", None),
    ("sample-checkpoint-pipe", sample(checkpoint="{t}/ck.pt"), ["ck.pt"], "named pipe",
     lambda tmp: os.mkfifo(tmp / "ck.pt")),
    ("sample-out-is-a-file", ["sample", "--checkpoint", "{d}/a_file", "--cases", CASES, "--out", "{d}/a_file"],
     ["a_file"], "is a file", None),
    ("train-max-steps-negative", train("--max-steps", "-1"), ["--max-steps"], "at least 1", None),
    ("train-max-steps-0", train("--max-steps", "0"), ["--max-steps"], "at least 1", None),
    ("train-run-dir-is-a-file", train(run_dir="{d}/a_file"), ["a_file"], "is a file", None),
    ("train-cases-missing", ["train", "--config", "tiny", "--cases", "{d}/no_cases", "--run-dir", "{t}/run"], ["no_cases"],
     "not found", None),
    ("nnunet-train-fold-text", nn_train("--fold", "abc"), ["--fold"], "not a fold", None),
    ("nnunet-train-fold-negative", nn_train("--fold", "-1"), ["--fold"], "not a fold", None),
    ("nnunet-train-epochs-0", nn_train("--epochs", "0"), ["--epochs"], "at least 1", None),
    ("nnunet-train-iterations-0", nn_train("--iterations", "0"), ["--iterations"], "at least 1", None),
    ("nnunet-train-patch-0", nn_train("--patch-size", "0", "0", "0"), ["--patch-size"], "at least 1", None),
    ("nnunet-export-test-same-folder", export(test=CASES), ["prepared"], "same folder", None),
    ("nnunet-export-test-same-ids", export(test="{d}/test_same_ids"), ["case_b"], "also training", None),
    ("nnunet-export-test-same-ct", export(test="{d}/test_same_ct"), ["held_out_1"], "same CT", None),
    ("nnunet-export-margin-0", export("--train-margin-mm", "0"), ["--train-margin-mm"], "greater than 0", None),
    ("nnunet-export-test-margin-nan", export("--test-margin-mm", "nan"), ["--test-margin-mm"], "finite", None),
    ("nnunet-export-blend-negative", export("--blend-mm", "-1"), ["--blend-mm"], "not be negative", None),
    ("nnunet-export-synt-per-case-0", export("--synt-per-case", "0"), ["--synt-per-case"], "at least 1", None),
    ("nnunet-export-out-is-a-file", export(out="{d}/a_file"), ["a_file"], "is a file", None),
    ("nnunet-predict-out-png", predict(out="{t}/seg.png"), ["seg.png"], "cannot hold a 3D volume", None),
    ("nnunet-predict-fold-text", predict("--fold", "abc"), ["--fold"], "not a fold", None),
    ("nnunet-predict-margin-0", predict("--margin-mm", "0"), ["--margin-mm"], "greater than 0", None),
    ("nnunet-predict-model-missing", ["nnunet", "predict", "--model", "{d}/no_model", "--ct", CT, "--out",
                                      "{t}/p.nii.gz"], ["no_model"], "trained-model folder", None),
    ("run-test-same-folder", run("--cases", CASES, "--test-cases", CASES), ["prepared"], "same folder", None),
    ("run-test-same-ct", run("--cases", CASES, "--test-cases", "{d}/test_same_ct"), ["held_out_1"], "same CT",
     None),
    ("run-raw-test-same-folder", run("--raw-cases", "{d}/raw", "--raw-test-cases", "{d}/raw"), ["raw"],
     "same folder", None),
    ("run-raw-test-same-ct", run("--raw-cases", "{d}/raw", "--raw-test-cases", "{d}/raw_test"), ["p9"], "same CT",
     None),
    ("run-nnunet-epochs-0", run("--nnunet-epochs", "0"), ["--nnunet-epochs"], "at least 1", None),
    ("run-patch-mixed-zero", run("--cases", CASES, "--test-cases", "{d}/test_same_ids", "--nnunet-patch-size",
                                 "0", "32", "32"), ["--nnunet-patch-size"], "mixes 0", None),
    ("run-ddpm-iterations-0", run("--ddpm-iterations", "0"), ["--ddpm-iterations"], "at least 1", None),
    ("demo-train-cases-0", ["demo", "--out", "{t}/demo", "--train-cases", "0"], ["--train-cases"], "at least 1",
     None),
    ("demo-out-is-a-file", ["demo", "--out", "{d}/a_file"], ["a_file"], "is a file", None),
    ("evaluate-out-is-a-file", ["evaluate", "--out", "{d}/a_file"], ["a_file"], "is a file", None),
    ("unknown-command", ["synthesize"], ["synthesize"], "invalid choice", None),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES_TABLE])
@pytest.mark.timeout(60)
def test_bad_argument_is_refused(refused, tmp_path: Path, args, names, why, setup):
    if setup is not None:
        setup(tmp_path)
    refused(args, names, why)


@pytest.mark.parametrize("args", [["nnunet", "train", "--project", "p", "--fold", "abc"],
                                  ["phantom", "--out", "p", "--shape", "0", "32", "32"]],
                         ids=["fold", "shape"])
def test_bad_argument_refused_by_a_real_process(tmp_path: Path, args):
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", *args], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 2 and "lnsynth: error: argument --" in res.stderr and "Fix:" in res.stderr
    assert "Traceback" not in res.stderr and not list(tmp_path.iterdir())


def test_phantom_test_cases_are_told_apart_by_seed(tmp_path: Path):
    """Phantom ids repeat per folder (phantom_000, ...); other seeds are other cases, the same seed is leakage."""
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.phantom import write_phantom_cases
    from LNSynthLib.segmentation.leakage import check_prepared_disjoint

    for name, seed in (("train", 0), ("test", 100), ("same", 0)):
        write_phantom_cases(tmp_path / name, 1, seed=seed, shape_zyx=(48, 64, 64))
    check_prepared_disjoint(tmp_path / "train", tmp_path / "test")
    with pytest.raises(InputDataError, match="phantom_000"):
        check_prepared_disjoint(tmp_path / "train", tmp_path / "same")
