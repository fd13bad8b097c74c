"""The trainer shared by the baseline and CoMet (CoMet = switches on the same loop)."""
