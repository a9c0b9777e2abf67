"""The noise process: beta schedules, the reverse-step samplers (DDPM/DDIM/DPM++) and the variational bound."""
