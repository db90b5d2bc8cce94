"""Datasets: layouts, split, stats, dedup and the synthetic generator. No torch imports here."""

from fakescan.data.layouts import Dataset, Sample, load_dataset, order_classes

__all__ = ["Dataset", "Sample", "load_dataset", "order_classes"]
