"""The allowed values of every enumerated LN-DDPM setting, declared once.

`LNDDPMConfig.validate()` checks configs against these tuples, the CLI builds its argparse
`choices` from them and the Slicer panel fills its combo boxes from them. This module imports
nothing but the standard library, so the panel can import it inside Slicer's process.
"""

from __future__ import annotations

BUNDLED_CONFIGS = ("tiny", "paper", "paper-bf16", "paper002")  # diffusion/configs/<name>.yaml; paper-bf16 = paper + bf16
PAPER_000_CONFIGS = ("paper", "paper-bf16")      # paper 000's recipe: its pipeline sizes and anatomy guards
PROCESSES = ("ddpm", "rflow")                     # noise process (diffusion/process/processes.py)
SAMPLERS = ("ddpm", "ddim", "dpmpp", "rflow")     # diffusion/process/samplers.py; rflow = Euler steps
RFLOW_SAMPLERS = ("rflow",)                       # the samplers of process rflow; the others are DDPM's
SCHEDULES = ("cosine", "linear")                  # diffusion/process/schedule.py
PREDICTIONS = ("epsilon", "v")                    # what the network outputs
LOSSES = ("l1", "l2", "mse")                      # l2 and mse are one loss (diffusion_loss)
VARIANCES = ("fixed_small", "learned_range")      # reverse-process variance (diffusion/process/vlb.py)
AMP_MODES = ("auto", "bf16", "off")               # auto: bf16 on GPUs, none on CPU
VARIANTS = ("ln_ddpm", "conditional", "mask_guided", "edge_guided", "gscond_ln_only", "med_ddpm")
# How tables name each variant (paper 000 Tables 1-2, paper 002); med_ddpm is the shared-U-Net analogue.
VARIANT_LABELS = {"ln_ddpm": "LN-DDPM", "conditional": "Conditional DDPM", "mask_guided": "Mask-guided DDPM",
                  "edge_guided": "Edge-guided DDPM", "gscond_ln_only": "GSCond w/ LN mask", "med_ddpm": "Med-DDPM"}
LDCOND_VARIANTS = ("ln_ddpm",)                    # with LDCond transformers; the others: plain self-attention
ATTENTION_MODES = ("LD", "LA", "GA")              # LDCond mode (paper 000 Table 4c)
LD_GATES = ("max", "fraction", "nearest")         # LN mask -> transformer level (local_detail.ln_gate)
LDCOND_PLACEMENTS = ("all", "middle")             # LDCond transformers: every block at 16³, or one
SAMPLE_WINDOWS = ("per_node", "case_centre")      # sampling window rule (diffusion/sample/windows.py)

# config key -> allowed values; the one table `LNDDPMConfig.validate()` walks.
CONFIG_CHOICES: dict[str, tuple[str, ...]] = {
    "network.variant": VARIANTS,
    "network.attention_mode": ATTENTION_MODES,
    "network.ld_gate": LD_GATES,
    "network.ldcond_placement": LDCOND_PLACEMENTS,
    "diffusion.process": PROCESSES,
    "diffusion.schedule": SCHEDULES,
    "diffusion.prediction": PREDICTIONS,
    "diffusion.loss": LOSSES,
    "diffusion.variance": VARIANCES,
    "train.amp": AMP_MODES,
    "sample.sampler": SAMPLERS,
    "sample.window": SAMPLE_WINDOWS,
}


def method_label(variant: str, overrides: dict[str, object] | None = None) -> str:
    """A table row's method: the variant's name plus any other `network.*` override (`LN-DDPM (attention_mode=GA)`)."""
    extra = [f"{key.split('.', 1)[1]}={value}" for key, value in sorted((overrides or {}).items())
             if key.startswith("network.") and key != "network.variant"]
    label = VARIANT_LABELS.get(variant, variant)
    return f"{label} ({', '.join(extra)})" if extra else label
