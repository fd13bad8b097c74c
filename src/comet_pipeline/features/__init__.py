"""Frozen ImageNet backbones and the on-disk feature cache."""
