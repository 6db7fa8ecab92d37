"""The encoder with one head per task, loaded from any HF encoder id or local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from stiltsearch.trainables.heads import Head
from stiltsearch.trainables.tasks.base import Task
from stiltsearch.trainables.types import Encoder, Tokenizer


def load_tokenizer(model: str | Path) -> Tokenizer:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model))


def load_encoder(model: str | Path, attention: str = "sdpa") -> Encoder:
    """The bare encoder (no LM head) of an HF id or a saved directory, in fp32.

    ``attention`` is transformers' ``attn_implementation`` ("sdpa" or "eager"). fp32 whatever the
    directory's config says: transformers 5.23 loads in the saved ``dtype`` by default, and a
    directory saved from a module trained in bf16 says bfloat16 even when its weights are the fp32
    master copy. Training precision is the engine's business, serving precision the deploy's.
    """
    from transformers import AutoModel

    try:  # BERT-family encoders build an unused pooler unless told not to
        return AutoModel.from_pretrained(str(model), add_pooling_layer=False, attn_implementation=attention,
                                         dtype=torch.float32)
    except TypeError:  # encoders without a pooler (DeBERTa-v2, DistilBERT) take no such argument
        return AutoModel.from_pretrained(str(model), attn_implementation=attention, dtype=torch.float32)


def keep_layers(encoder: Encoder, n: int) -> Encoder:
    """Drop all but the first ``n`` transformer layers (a deployment knob: fewer layers, faster)."""
    stack: Any = encoder.encoder  # XLM-R's layer stack (transformers types it as a Module)
    layers = stack.layer
    if not 1 <= n <= len(layers):
        raise ValueError(f"layers_kept={n} is outside 1..{len(layers)} for this model")
    stack.layer = nn.ModuleList(list(layers)[:n])
    encoder.config.num_hidden_layers = n
    return encoder


class MultiTaskModel(nn.Module):
    """A shared encoder with a head per task. ``forward`` returns the loss when given labels."""

    def __init__(self, encoder: Any, tasks: list[Task] | dict[str, tuple[str, int]]) -> None:
        """``tasks``: Task objects, or ``{name: (head kind, number of labels)}`` as :func:`portable` keeps."""
        super().__init__()
        self.encoder: Any = encoder  # an HF encoder (transformers' PreTrainedModel)
        self.head_specs = dict(tasks) if isinstance(tasks, dict) else {t.name: (t.head, t.num_labels) for t in tasks}
        hidden = encoder.config.hidden_size
        self.heads: Any = nn.ModuleDict({name: Head(kind, hidden, n) for name, (kind, n) in self.head_specs.items()})

    def logits(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        num_choices = None
        if input_ids.dim() == 3:  # multiple choice: (batch, choices, seq) -> one row per choice
            num_choices = input_ids.shape[1]
            input_ids, attention_mask = input_ids.flatten(0, 1), attention_mask.flatten(0, 1)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if task not in self.heads:  # a retrieval target has no head: its output is the hidden states
            return hidden
        return self.heads[task](hidden, num_choices)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                **_: Any) -> torch.Tensor:
        head: Any = self.heads[task]
        return head.loss(self.logits(task, input_ids, attention_mask), labels)


def portable(model: MultiTaskModel) -> dict[str, Any]:
    """Architecture and weights as plain data: what can be pickled, shipped and rebuilt.

    A module trained by a DeepSpeed engine keeps references to the process group, so it can be
    neither pickled nor deep-copied; this form can.
    """
    return {"config": model.encoder.config, "heads": dict(model.head_specs),
            "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}


def rebuild(data: dict[str, Any], device: torch.device | str = "cpu") -> MultiTaskModel:
    """A fresh fp32 :class:`MultiTaskModel` (no training-time hooks) on ``device`` from
    :func:`portable` data (or the same with the state left where it is: on the GPU it trained on).

    The modules are allocated on ``device`` without their random initialisation (transformers'
    ``no_init_weights``: every weight is then loaded, and a missing one is an error), so a deploy
    costs one copy of the weights, not an init pass of the whole model (5-15 s at XLM-R-base shape
    on a CPU) plus a round trip through host memory.
    """
    from transformers import AutoModel
    from transformers.initialization import no_init_weights

    with no_init_weights(), torch.device(device):
        try:
            encoder = AutoModel.from_config(data["config"], add_pooling_layer=False, dtype=torch.float32)
        except TypeError:  # no pooler to leave out (see load_encoder)
            encoder = AutoModel.from_config(data["config"], dtype=torch.float32)
        model = MultiTaskModel(encoder, data["heads"])
    model.load_state_dict({k: v.float() for k, v in data["state"].items()})
    return model.eval()


def weights(model: MultiTaskModel) -> dict[str, Any]:
    """Like :func:`portable`, but the state stays where it is (no copy): for a deploy in this process."""
    return {"config": model.encoder.config, "heads": dict(model.head_specs),
            "state": {k: v.detach() for k, v in model.state_dict().items()}}
