"""Label Studio labeling configs (XML files), read with importlib.resources."""
