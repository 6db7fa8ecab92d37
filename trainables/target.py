"""Phase 3, one target task: fine-tune on English plus the chosen translate-train languages and
score every language, or, for a retrieval target, score the phase-2 encoder as deployed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from stiltsearch.trainables import data, plan, retrieval
from stiltsearch.trainables.deploy import build_encoder, deploy
from stiltsearch.trainables.engine import TrainingRun
from stiltsearch.trainables.model import MultiTaskModel
from stiltsearch.trainables.params import TrialParams, applies
from stiltsearch.trainables.plan import train_languages
from stiltsearch.trainables.processgroup import world
from stiltsearch.trainables.settings import TrialSettings
from stiltsearch.trainables.tasks.base import Task
from stiltsearch.trainables.types import Tokenizer


def predict(model: MultiTaskModel, task: Task, examples: Sequence[Any], tokenizer: Tokenizer, *, max_length: int,
            batch_size: int = 128, head: str | None = None) -> list[Any]:
    """``task``'s predictions for ``examples`` through its head (or the head named ``head``)."""
    head = head or task.name
    model.eval()
    device = next(model.parameters()).device
    predictions: list[Any] = [None] * len(examples)
    with torch.inference_mode():
        for index, batch in data.eval_batches(task, examples, tokenizer, batch_size=batch_size, max_length=max_length):
            logits = model.logits(head, batch["input_ids"].to(device), batch["attention_mask"].to(device))
            for i, p in zip(index, model.heads[head].decode(logits.float(), batch)):
                predictions[i] = p
    return predictions


def embed(model: MultiTaskModel, texts: list[str], tokenizer: Tokenizer, *, max_length: int, batch_size: int = 128,
          pool: str = "mean", layer: int | None = None, head: str | None = None) -> torch.Tensor:
    """Unit-length sentence vectors: the hidden states of ``layer`` (1 = the first layer's output;
    None = the last) pooled as the mean over real tokens, or as the first token's (``pool="cls"``);
    with ``head`` (a dual encoder's task), that head's vectors."""
    device = next(model.parameters()).device
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt").to(device)
            if head is not None:
                vectors.append(model.logits(head, batch["input_ids"], batch["attention_mask"]).float())
                continue
            out = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                output_hidden_states=layer is not None)
            hidden = out.last_hidden_state if layer is None else out.hidden_states[layer]  # [0]: the embeddings
            if pool == "cls":
                vectors.append(hidden[:, 0].float())
                continue
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors.append(((hidden * mask).sum(1) / mask.sum(1)).float())
    return torch.nn.functional.normalize(torch.cat(vectors), dim=-1)


def retrieval_phase(settings: TrialSettings, params: TrialParams, task: Task, encoder_dir: str,
                    tokenizer: Tokenizer) -> tuple[MultiTaskModel, dict[str, float], dict[str, Any]]:
    """A retrieval target: no training; texts are matched by the cosine similarity of pooled
    representations of the phase-2 encoder, as deployed, in the way the task asks
    (:data:`retrieval.RETRIEVERS`)."""
    from transformers import AutoConfig

    model = MultiTaskModel(build_encoder(encoder_dir, params), {})
    deployed = deploy(model, params)  # on the trial's device: its GPU embeds, not the host's CPU
    length = settings.length(task, params.max_seq_length)
    depth = int(AutoConfig.from_pretrained(encoder_dir).num_hidden_layers)  # before layers_kept cut it
    layer = retrieval.pooled_layer(task.pool_layer, depth, model.encoder.config.num_hidden_layers)

    def vectors(texts: list[str]) -> torch.Tensor:
        return embed(deployed, texts, tokenizer, max_length=length, pool=task.pool, layer=layer)

    scores, extra = retrieve(settings, task, vectors)
    return model, scores, {f"phase3/{task.name}/pooled_layer": layer, **extra}


def retrieve(settings: TrialSettings, task: Task, vectors: retrieval.Vectors) -> tuple[dict[str, float], dict[str, Any]]:
    """A retrieval task's score per scored language, from ``vectors(texts)``; BUCC's chosen thresholds."""
    scores: dict[str, float] = {}
    extra: dict[str, Any] = {}
    for lang, result in retrieval.RETRIEVERS[task.retrieve](task, settings.eval_split, settings.languages(task),
                                                            vectors).items():
        scores[lang] = result["major"]
        if "threshold" in result:  # BUCC's chosen similarity threshold
            extra[f"phase3/{task.name}/{lang}/threshold"] = result["threshold"]
    return scores, extra



@applies("train_languages", "target_lr", "max_seq_length")
def target_phase(settings: TrialSettings, params: TrialParams, task: Task, encoder_dir: str,
                 tokenizer: Tokenizer, budget: float = 1.0) -> tuple[MultiTaskModel, dict[str, float], dict[str, Any]]:
    """Phase 3 for one target: fine-tune on English + chosen languages, then score every language.

    ``budget`` < 1 trains the first ``ceil(budget * steps)`` steps of the full run (its schedule
    spans all ``steps``), as a scheduler's rung asks; the scores are computed exactly as at the end.
    Returns the trained model in its training precision; scores are of its deployed precision.
    """
    if not task.kind.trained:
        return retrieval_phase(settings, params, task, encoder_dir, tokenizer)
    model, metrics = train_target(settings, params, task, encoder_dir, tokenizer, budget)
    return model, score_target(settings, params, task, model, tokenizer), metrics


def train_target(settings: TrialSettings, params: TrialParams, task: Task, encoder_dir: str, tokenizer: Tokenizer,
                 budget: float = 1.0) -> tuple[MultiTaskModel, dict[str, Any]]:
    """A trained target's fine-tuning alone -> (the model, with a head named ``task.name``; metrics)."""
    languages = train_languages(params, task)
    examples = [ex for lang in languages for ex in task.load("train", lang)]
    torch.manual_seed(settings.seed)  # as phase 2: independent of the targets trained before this one
    model = MultiTaskModel(build_encoder(encoder_dir, params), [task])
    length = settings.length(task, params.max_seq_length)
    batch = plan.batch_size(settings.recipes, task.name, settings.batch_size)
    stream = data.batches(task, examples, tokenizer, batch_size=batch, max_length=length,
                          seed=settings.seed + world()[0])
    steps = plan.phase3_steps(settings.recipes, task.name, len(examples), settings.batch_size, settings.target_steps)
    run = TrainingRun(model, stream, steps=steps, lr=params.target_lr, batch_size=batch,
                      settings=settings.trained_with, sequences=batch * plan.sequences_per_example(task))
    run.advance(steps if budget >= 1 else math.ceil(budget * steps))
    log = run.close()
    return model, {**log.metrics(f"phase3/{task.name}"), f"phase3/{task.name}/train_languages": ",".join(languages),
                   f"phase3/{task.name}/steps": run.done}


def score_target(settings: TrialSettings, params: TrialParams, task: Task, model: MultiTaskModel, tokenizer: Tokenizer,
                 head: str | None = None) -> dict[str, float]:
    """A trained target's score per language, of ``model`` as deployed; ``head``: the name of the
    head to read (another target's, when that target trained the model: :func:`~.groups.training_key`)."""
    head = head or task.name
    deployed = deploy(model, params)  # scored as it will be served, on the trial's device
    length = settings.length(task, params.max_seq_length)
    if task.kind.retrieves:  # a dual encoder: retrieval with the vectors it was trained to give
        return retrieve(settings, task, lambda texts: embed(deployed, texts, tokenizer, max_length=length,
                                                             head=head))[0]
    scores: dict[str, float] = {}
    for lang in settings.languages(task):
        dev = task.load(settings.eval_split, lang)
        scores[lang] = task.score(predict(deployed, task, dev, tokenizer, max_length=length, head=head), dev,
                                  lang)["major"]
    return scores
