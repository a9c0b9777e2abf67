"""nnU-Net v2: one owner of its folders, datasets, trainers and programs.

`project` knows where everything lies (project folders, dataset names, trained-model folders);
`export` writes raw datasets; `runner` plans, trains and predicts through nnU-Net's own programs,
which it starts through `entry`; `trainers/` is the folder nnU-Net searches for LNSynth's trainers.
This file imports nothing, so `constants` and `project` stay light (no torch, no nnunetv2).
"""
