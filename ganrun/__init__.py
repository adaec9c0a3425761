"""ganrun: a config-driven experiment runner for generative adversarial networks.

Python API: ``load_generator(path)`` (an export folder or a checkpoint) returns the trained
generator as a plain ``nn.Module``; ``generate_images(G, num, seed)`` draws images from it.
"""

__version__ = "0.1.0"

__all__ = ["generate_images", "load_generator"]


def __getattr__(name: str):
    # Imported on first use: `ganrun --help` and the config code do not need torch.
    if name == "load_generator":
        from ganrun.loading import load_generator
        return load_generator
    if name == "generate_images":
        from ganrun.generate import generate_images
        return generate_images
    raise AttributeError(f"module 'ganrun' has no attribute {name!r}")
