"""Datasets: readers for MVTec/VisA/VIADUCT/KSDD2 layouts, the built-in generator, contamination."""
