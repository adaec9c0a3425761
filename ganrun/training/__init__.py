"""What tasks train with: losses, discriminator regularizers, DiffAugment, the generator EMA,
image pools, learning-rate schedules and optimizer corrections."""
