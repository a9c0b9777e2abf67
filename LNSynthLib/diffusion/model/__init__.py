"""The denoising network and its parts: UNet backbone, local-detail branch, mask encoder, variants, conditioning."""
