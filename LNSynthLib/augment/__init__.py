"""Training-data augmentation that needs no generative model (the copy-paste baseline)."""
