"""SimCLR (Chen et al. 2020): NT-Xent over both views, negatives from every rank."""

from __future__ import annotations

import tensorflow as tf

from ssl_backbones.losses import nt_xent_loss
from ssl_backbones.methods.base import SSLMethod


class SimCLR(SSLMethod):
    """Backbone + projector trained with NT-Xent at ``cfg.temperature``.

    The projections of all ranks are gathered (``ctx.allgather``, differentiable) so each
    anchor sees ``2*N*B - 2`` negatives for ``N`` ranks of ``B`` pairs.
    """

    method_name = "simclr"

    def forward(self, view1, view2, step):
        b = tf.shape(view1)[0]
        _, z = self.embed(tf.concat([view1, view2], axis=0), training=True)
        z1, z2 = z[:b], z[b:]
        z1_all = self.ctx.allgather(z1)
        z2_all = self.ctx.allgather(z2)
        loss = nt_xent_loss(z1, z2, z1_all, z2_all, self.ctx.rank, self.cfg.temperature)
        return loss, {"embedding_std": self.collapse_metric(z1)}


METHOD = SimCLR
