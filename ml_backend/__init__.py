"""Label Studio ML backend serving the proposal engine's top-k as pre-annotations."""
