"""CoGAN (Liu & Tuzel 2016): a GAN shape ganrun does not ship, added from outside it."""
