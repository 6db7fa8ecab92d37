"""Phase 1 on the embedded default: a tiny XLM-R-architecture MLM pretrained on the toy world.

The result is an ordinary HF model directory (config, safetensors weights, tokenizer files), so
every later phase loads it exactly as it would load ``xlm-roberta-base``. It is cached on disk under
a key of everything it is made from; concurrent callers wait on a file lock and build it once.
"""

from __future__ import annotations

import fcntl
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
from stiltsearch.trainables.engine import EngineSettings, train
from stiltsearch.trainables.settings import ToyModels, ToyModelSpec

__all__ = ["ToyModelSpec", "ToyModels", "ensure_toy_model", "train_tokenizer"]

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R's ids 0..3, mask last


def train_tokenizer(sentences: list[str], vocab_size: int) -> Any:
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
    """Wraps the MLM so that ``forward(**batch)`` returns the loss, as the engine expects."""

    def __init__(self, mlm: nn.Module) -> None:
        super().__init__()
        self.mlm = mlm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss


def _mlm_batches(sentences: list[str], tokenizer: Any, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """BERT masking: 15% of real tokens are targets; of those 80% <mask>, 10% random, 10% kept."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor(sorted(tokenizer.all_special_ids))
    while True:
        batch = tokenizer(rng.sample(sentences, batch_size), padding=True, truncation=True, max_length=128,
                          return_tensors="pt")
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


def ensure_toy_model(spec: ToyModelSpec, cache_dir: str | Path, engine: EngineSettings = EngineSettings(),
                     progress: Callable[[str], None] = print) -> Path:
    """The directory of the pretrained toy model for ``spec``, building it if it is not cached."""
    cache = Path(cache_dir) / "models"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"toy-xlmr-{spec.key()}"
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then read its result
        if (target / "stiltsearch_spec.json").exists():
            return target
        _build(spec, target, engine, progress)
    return target


def _build(spec: ToyModelSpec, target: Path, engine: EngineSettings, progress: Callable[[str], None]) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    start = time.perf_counter()
    torch.manual_seed(spec.seed)
    sentences = [s for code in toyworld.LANGUAGES for s in toyworld.corpus(code, spec.corpus_per_language, spec.seed)]
    tokenizer = train_tokenizer(sentences, spec.vocab_size)
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
                steps=spec.mlm_steps, lr=spec.mlm_lr, micro_batch_size=spec.mlm_batch_size, settings=engine,
                log_every=100, progress=lambda step, loss: progress(f"  mlm step {step}/{spec.mlm_steps} loss {loss:.3f}"))
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    mlm.float().save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = {"spec": asdict(spec), "generator": toyworld.GENERATOR_VERSION, "mlm_losses": log.losses,
              "seconds": round(time.perf_counter() - start, 1)}
    (staging / "stiltsearch_spec.json").write_text(json.dumps(record, indent=1))
    staging.rename(target)  # atomic: a reader sees the whole model or none
    progress(f"phase 1: done in {record['seconds']} s, MLM loss {log.losses[0]:.2f} -> {log.losses[-1]:.2f}")
