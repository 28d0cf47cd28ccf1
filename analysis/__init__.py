"""What the new labels say: plain functions over tables (label sets, predictions, metrics) and the report."""
