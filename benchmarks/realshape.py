"""An XLM-R-shaped encoder with random weights and a 250,002-piece tokenizer, built offline.

Nothing is downloaded: the tokenizer is the embedded toy model's byte-pair model (so the toy tasks
tokenize as they do in a toy search) padded with filler pieces up to XLM-R's 250,002, which gives
the embedding matrix its real size (192 M of XLM-R base's 278 M parameters); the encoder is
``XLMRobertaModel`` at the named shape, random-initialised and saved as a model directory that
``stiltsearch`` reads as it reads ``xlm-roberta-base``. Used by ``phase_memory.py`` and ``gpu_check.py``.

    from benchmarks.realshape import build          (or run from benchmarks/: from realshape import build)
    model_dir = build("base", cache)                 # ~1.1 GB on disk, a minute on 2 cores
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SHAPES = {  # XLM-R's published shapes: layers, hidden, heads, feed-forward
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}
VOCAB = 250_002  # XLM-R's SentencePiece vocabulary, with its 4 specials
POSITIONS = 514  # 512 tokens + RoBERTa's offset of 2


def toy_tokenizer_dir(cache: Path) -> Path:
    """A small toy model's directory (its tokenizer is what the toy tasks were written for)."""
    from stiltsearch.trainables.pretrain import ensure_toy_model
    from stiltsearch.trainables.settings import ToyModelSpec

    spec = ToyModelSpec(layers=1, hidden=32, heads=2, intermediate=64, corpus_per_language=2000, mlm_steps=1,
                        mlm_batch_size=8)
    return ensure_toy_model(spec, cache, progress=lambda _: None)


def build(shape: str, cache: Path) -> Path:
    """The directory of a random ``shape`` ("base" or "large") XLM-R with a 250,002-piece tokenizer."""
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    target = cache / f"xlmr-{shape}-random"
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    layers, hidden, heads, ff = SHAPES[shape]
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    toy = AutoTokenizer.from_pretrained(str(toy_tokenizer_dir(cache)))
    toy.save_pretrained(staging)
    spec = json.loads((staging / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]  # piece -> id; filler pieces that no text produces fill it to XLM-R's size
    for i in range(len(vocab), VOCAB):
        vocab[f"<filler{i}>"] = i
    (staging / "tokenizer.json").write_text(json.dumps(spec))
    tokenizer = AutoTokenizer.from_pretrained(str(staging))
    assert len(tokenizer) == VOCAB, len(tokenizer)
    config = XLMRobertaConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=ff, max_position_embeddings=POSITIONS, type_vocab_size=1,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
