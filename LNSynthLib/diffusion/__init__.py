"""LN-DDPM: conditional 3D diffusion for abdominal CT lymph-node synthesis (paper 000) and its variants."""
