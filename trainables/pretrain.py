"""Phase 1 on the embedded default: a tiny XLM-R-architecture MLM pretrained on the toy world.

The result is an ordinary HF model directory (config, safetensors weights, tokenizer files), so
every later phase loads it exactly as it would load ``xlm-roberta-base``. It is cached on disk under
a key of everything it is made from; concurrent callers wait on a file lock and build it once.
"""

from __future__ import annotations

import fcntl
import functools
import json
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.engine import train
from stiltsearch.trainables.settings import PRETRAIN_RECIPE, EngineSettings, ToyModelSpec
from stiltsearch.trainables.types import Tokenizer

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R's ids 0..3, mask last


def train_tokenizer(sentences: list[str], vocab_size: int) -> Tokenizer:
    """A SentencePiece-style (Metaspace) BPE tokenizer as a transformers fast tokenizer.

    XLM-R's own is a SentencePiece unigram model; on this small corpus the unigram trainer keeps only
    ~260 pieces (near character level, doubling sequence length), so the toy uses BPE.
    """
    from tokenizers import SentencePieceBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    raw = SentencePieceBPETokenizer(unk_token="<unk>")
    raw.train_from_iterator(sentences, vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    bos, eos = raw.token_to_id("<s>"), raw.token_to_id("</s>")
    # RoBERTa's pair layout: <s> A </s></s> B </s>
    raw.post_processor = TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                            special_tokens=[("<s>", bos), ("</s>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", cls_token="<s>",
                                   sep_token="</s>", model_max_length=128)


class _MaskedLM(nn.Module):
    """Wraps the MLM so that ``forward(**batch)`` returns the loss, as the engine expects.

    The loss is ``XLMRobertaForMaskedLM``'s (cross-entropy over the target tokens, averaged), but
    the LM head runs on the ~15% of positions that are targets only, not on every position and
    then masked: the same numbers for fewer FLOPs (NVIDIA's BERT pretraining does the same).
    """

    def __init__(self, mlm: Any) -> None:
        super().__init__()
        self.mlm = mlm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.mlm.roberta(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        targets = labels != -100
        return nn.functional.cross_entropy(self.mlm.lm_head(hidden[targets]), labels[targets])


POOL_BATCHES = 16  # batches drawn at once and grouped by length (_mlm_batches)


def _mlm_batches(sentences: list[str], tokenizer: Tokenizer, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """BERT masking: 15% of real tokens are targets; of those 80% <mask>, 10% random, 10% kept.

    Length-grouped, as HF Trainer's ``group_by_length``: ``POOL_BATCHES`` batches' worth of
    sentences are drawn at once, sorted by length, cut into batches, and the batches shuffled.
    Random batches of the toy corpus are ~47% padding (1,182 real tokens in 64 x ~35 positions);
    grouped, each step trains on as many real tokens at about half the cost: measured 132 -> 71
    ms a step on the 4-layer toy, 76 -> 42 on the 2-layer one (2 threads, 60 steps each).
    """
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor(sorted(tokenizer.all_special_ids))
    while True:
        drawn = rng.sample(sentences, batch_size * POOL_BATCHES)
        encoded = tokenizer(drawn, truncation=True, max_length=128)["input_ids"]  # once; padded per batch below
        order = sorted(range(len(drawn)), key=lambda i: len(encoded[i]))
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(groups)
        for group in groups:
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in group]}, return_tensors="pt")
            ids = batch["input_ids"]
            labels = ids.clone()
            candidates = ~torch.isin(ids, special)
            target = (torch.rand(ids.shape, generator=gen) < 0.15) & candidates
            labels[~target] = -100
            roll = torch.rand(ids.shape, generator=gen)
            ids = ids.clone()
            ids[target & (roll < 0.8)] = tokenizer.mask_token_id
            randomize = target & (roll >= 0.8) & (roll < 0.9)
            ids[randomize] = torch.randint(len(special), len(tokenizer), (int(randomize.sum()),), generator=gen)
            yield {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}


@functools.lru_cache(maxsize=1)
def _corpus_and_tokenizer(per_language: int, seed: int, vocab_size: int) -> tuple[list[str], Any]:
    """The MLM corpus and its tokenizer (~2.5 s): one per phase 1, shared by the toy sizes built from
    the same corpus (they differ in depth only). Neither is changed by pretraining."""
    sentences = [s for code in toyworld.LANGUAGES for s in toyworld.corpus(code, per_language, seed)]
    return sentences, train_tokenizer(sentences, vocab_size)


LOG_EVERY = 20  # MLM steps per logged loss (and per call of ``on_step``)


def ensure_toy_model(spec: ToyModelSpec, cache_dir: str | Path, engine: EngineSettings = EngineSettings(),
                     progress: Callable[[str], None] = print,
                     on_step: Callable[[int, float], None] | None = None) -> Path:
    """The directory of the pretrained toy model for ``spec``, building it if it is not cached.
    ``progress`` gets the build's event lines; ``on_step(step, loss)`` is called every
    ``LOG_EVERY`` MLM steps (default: a line every 100 steps through ``progress``)."""
    cache = Path(cache_dir) / "models"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"toy-xlmr-{spec.key()}"
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then read its result
        if (target / "stiltsearch_spec.json").exists():
            return target
        _build(spec, target, engine, progress, on_step or _every_hundred(spec, progress))
    return target


def _every_hundred(spec: ToyModelSpec, progress: Callable[[str], None]) -> Callable[[int, float], None]:
    def line(step: int, loss: float) -> None:
        if step % 100 == 0 or step == spec.mlm_steps:
            progress(f"  mlm step {step}/{spec.mlm_steps} loss {loss:.3f}")
    return line


def _build(spec: ToyModelSpec, target: Path, engine: EngineSettings, progress: Callable[[str], None],
           on_step: Callable[[int, float], None]) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    start = time.perf_counter()
    torch.manual_seed(spec.seed)
    sentences, tokenizer = _corpus_and_tokenizer(spec.corpus_per_language, spec.seed, spec.vocab_size)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads, intermediate_size=spec.intermediate,
        max_position_embeddings=spec.max_positions, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, type_vocab_size=1,
    )
    mlm = XLMRobertaForMaskedLM(config)
    progress(f"phase 1: pretraining the toy encoder ({spec.layers} layers x {spec.hidden}, vocab "
             f"{len(tokenizer)}) with MLM for {spec.mlm_steps} steps; cached afterwards")
    log = train(_MaskedLM(mlm), _mlm_batches(sentences, tokenizer, spec.mlm_batch_size, spec.seed),
                steps=spec.mlm_steps, lr=spec.mlm_lr, batch_size=spec.mlm_batch_size, settings=engine,
                log_every=LOG_EVERY, progress=on_step)
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    mlm.float().save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = {"spec": asdict(spec), "generator": toyworld.GENERATOR_VERSION, "recipe": PRETRAIN_RECIPE,
              "mlm_losses": log.losses, "mlm_log_every": LOG_EVERY, "seconds": round(time.perf_counter() - start, 1)}
    (staging / "stiltsearch_spec.json").write_text(json.dumps(record, indent=1))
    staging.rename(target)  # atomic: a reader sees the whole model or none
    progress(f"phase 1: done in {record['seconds']} s, MLM loss {log.losses[0]:.2f} -> {log.losses[-1]:.2f}")
