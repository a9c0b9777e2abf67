"""Segmentation and generation metrics of both papers."""
