"""A fixed stage around a network (an input filter, the views it scores) that stays out of the
way: architecture methods the drivers call (``param_groups``, ``load_backbone``) pass through
to the network inside."""

from __future__ import annotations

from torch import nn


class Wrapped(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.net, name)
