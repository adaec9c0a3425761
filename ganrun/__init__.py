"""ganrun: a config-driven experiment runner for generative adversarial networks.

Python API: ``load_generator(path)`` (an export folder or a checkpoint) returns the trained
generator as an ``nn.Module``; ``generate_images(G, num, seed)`` draws images from it.
"""

__version__ = "0.1.0"

__all__ = ["generate_images", "load_generator"]


def __getattr__(name: str):
    # Imported on first use: `ganrun --help` and the config code do not need torch.
    if name in __all__:
        from ganrun.inference import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'ganrun' has no attribute {name!r}")
