"""Generator and discriminator networks.

Every network is built by ``hydra.utils.instantiate`` from a ``model`` option, with the data
set's shape passed in at build time: generators get ``latent_dim``, ``channels`` and
``image_size``; discriminators get ``channels`` and ``image_size``. Both take an optional
``labels`` argument in ``forward`` so that conditional variants share the training loop.
"""
