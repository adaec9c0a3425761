"""Networks of text-to-image GANs, small enough for a CPU.

- ``TextEncoder``: word embeddings and a bidirectional GRU over a caption's words; the sentence
  vector is the mean of its outputs, projected. ``ImageEncoder``: a small CNN to the same
  space. The two are trained contrastively on the data's (image, caption) pairs before the GAN
  (as DF-GAN's DAMSM encoders are), then frozen; the image encoder also scores how well images
  match their text (R-precision).
- ``TextGenerator``: a DCGAN generator conditioned on the sentence vector, either as Reed et
  al.'s GAN-INT-CLS does (``fusion=concat``: the vector compressed by a fully connected layer
  and a leaky ReLU, joined to z) or as DF-GAN does (``fusion=affine``: after every block the
  features are scaled and shifted by affine maps of the vector and z, "deep fusion").
- ``TextDiscriminator``: a DCGAN discriminator whose last feature map is joined with the
  compressed sentence vector replicated over it (Reed et al.'s matching-aware D), then a 3x3
  convolution and the logit.
"""

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.dcgan import dcgan_layout
from ganrun.nets.layers import dcgan_init

FUSIONS = ("affine", "concat")


class TextEncoder(nn.Module):
    """Word indices (N, L) and lengths (N,) -> sentence vectors (N, text_dim)."""

    def __init__(self, vocabulary_size: int, text_dim: int = 128, embed_dim: int = 64,
                 hidden: int = 64):
        super().__init__()
        self.text_dim = text_dim
        self.embed = nn.Embedding(vocabulary_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, text_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # The padded batch as it is (packing would read the lengths on the host, a device
        # sync): the mean runs over each caption's own words only.
        outputs, _ = self.rnn(self.embed(tokens))
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        valid = (positions.unsqueeze(0) < lengths.clamp(min=1).unsqueeze(1)).to(outputs.dtype)
        mean = (outputs * valid.unsqueeze(2)).sum(1) / valid.sum(1, keepdim=True)
        return self.out(mean)


class ImageEncoder(nn.Module):
    """Images in [-1, 1] -> vectors (N, text_dim) in the sentence vectors' space."""

    def __init__(self, channels: int, image_size: int, text_dim: int = 128, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, True), nn.Conv2d(2 * width, 4 * width, 3, 2, 1),
            nn.LeakyReLU(0.2, True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4 * width, text_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class Affine(nn.Module):
    """DF-GAN's fusion: features x (1 + gamma(c)) + beta(c), per channel, from condition c."""

    def __init__(self, condition_dim: int, channels: int):
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(condition_dim, channels), nn.ReLU(True),
                                   nn.Linear(channels, channels))
        self.beta = nn.Sequential(nn.Linear(condition_dim, channels), nn.ReLU(True),
                                  nn.Linear(channels, channels))
        for head in (self.gamma, self.beta):  # starts as the identity
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma(condition)[:, :, None, None]
        return x * (1 + gamma) + self.beta(condition)[:, :, None, None]


class TextGenerator(nn.Module):
    """``G(z, text)``: images in [-1, 1] of latents z (N, latent_dim) and sentence vectors
    text (N, text_dim)."""

    text_conditional = True

    def __init__(self, latent_dim: int, channels: int, image_size: int, text_dim: int = 128,
                 width: int = 64, fusion: str = "affine", compressed: int = 128):
        super().__init__()
        if fusion not in FUSIONS:
            raise UserError(f"model.generator.fusion must be one of {', '.join(FUSIONS)}, got "
                            f"{fusion!r}: affine (DF-GAN) or concat (GAN-INT-CLS).")
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in reversed(range(doublings))]
        self.fusion, self.latent_dim = fusion, latent_dim
        self.compress = nn.Sequential(nn.Linear(text_dim, compressed), nn.LeakyReLU(0.2, True))
        condition = compressed + latent_dim  # what the affine maps read: text and z
        first = latent_dim + (compressed if fusion == "concat" else 0)
        self.first = nn.Sequential(nn.ConvTranspose2d(first, widths[0], base, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                          nn.BatchNorm2d(w_out), nn.ReLU(True))
            for w_in, w_out in zip(widths, widths[1:]))
        self.fuse = nn.ModuleList(Affine(condition, w) for w in widths) \
            if fusion == "affine" else None
        self.to_image = nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1),
                                      nn.Tanh())
        self.apply(dcgan_init)
        if self.fuse is not None:
            for affine in self.fuse:  # dcgan_init touched the heads: identity again
                for head in (affine.gamma, affine.beta):
                    nn.init.zeros_(head[-1].weight)
                    nn.init.zeros_(head[-1].bias)

    def forward(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        c = self.compress(text)
        x = torch.cat([z, c], 1) if self.fusion == "concat" else z
        h = self.first(x.view(len(x), -1, 1, 1))
        condition = torch.cat([c, z], 1)
        if self.fuse is not None:
            h = self.fuse[0](h, condition)
        for i, block in enumerate(self.blocks, 1):
            h = block(h)
            if self.fuse is not None:
                h = self.fuse[i](h, condition)
        return self.to_image(h)


class TextDiscriminator(nn.Module):
    """``D(images, text)``: real/fake logits (N,) of (image, sentence vector) pairs."""

    def __init__(self, channels: int, image_size: int, text_dim: int = 128, width: int = 64,
                 compressed: int = 64):
        super().__init__()
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in range(doublings)]
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out),
                       nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.compress = nn.Sequential(nn.Linear(text_dim, compressed), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Conv2d(widths[-1] + compressed, widths[-1], 3, 1, 1),
                                   nn.LeakyReLU(0.2, True),
                                   nn.Conv2d(widths[-1], 1, base, 1, 0))
        self.apply(dcgan_init)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = self.features(images)
        c = self.compress(text)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        return self.joint(torch.cat([h, c], 1)).flatten()
