"""Ready-made search spaces; each module exposes `space(**kwargs) -> nas.space.Space`."""
