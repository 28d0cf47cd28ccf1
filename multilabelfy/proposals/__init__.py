"""Stage 1, proposals: a timm model's top-k classes for every image of a dataset.

``engine`` holds the one top-k engine (also used by the ML backend); ``run`` turns a dataset into a
chunked, resumable, shardable proposals Parquet whose files ``store`` reads and writes.
"""
