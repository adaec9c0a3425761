"""The files of an export folder (Hugging Face's ``save_pretrained`` layout), named where the
commands can read them without loading torch."""

WEIGHTS, CONFIG = "model.safetensors", "config.json"
CARD, PICTURE = "README.md", "sample.png"
