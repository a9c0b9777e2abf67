"""The allowed values of every enumerated LN-DDPM setting, declared once.

`LNDDPMConfig.validate()` checks configs against these tuples, the CLI builds its argparse
`choices` from them and the Slicer panel fills its combo boxes from them. This module imports
nothing but the standard library, so the panel can import it inside Slicer's process.
"""

from __future__ import annotations

BUNDLED_CONFIGS = ("tiny", "paper", "paper-bf16", "paper002")  # diffusion/configs/<name>.yaml; paper-bf16 = paper + bf16
PROCESSES = ("ddpm", "rflow")                     # noise process (diffusion/process/processes.py)
SAMPLERS = ("ddpm", "ddim", "dpmpp", "rflow")     # diffusion/process/samplers.py; rflow = Euler steps
RFLOW_SAMPLERS = ("rflow",)                       # the samplers of process rflow; the others are DDPM's
SCHEDULES = ("cosine", "linear")                  # diffusion/process/schedule.py
PREDICTIONS = ("epsilon", "v")                    # what the network outputs
LOSSES = ("l1", "l2", "mse")                      # l2 and mse are one loss (diffusion_loss)
VARIANCES = ("fixed_small", "learned_range")      # reverse-process variance (diffusion/process/vlb.py)
AMP_MODES = ("auto", "bf16", "off")               # auto: bf16 on GPUs, none on CPU
VARIANTS = ("ln_ddpm", "conditional", "mask_guided", "edge_guided", "gscond_ln_only", "med_ddpm")
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
