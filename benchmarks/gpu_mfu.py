"""GPU: training and inference tokens/sec and MFU of an XLM-R-Large-shaped encoder (random weights,
no download) in bf16, trained through the project's DeepSpeed engine. Needs CUDA; without it, it
says so and exits 0 (CI never has a GPU).

MFU = achieved FLOP/s / the device's peak dense bf16 FLOP/s, with FLOPs per token of
6 x parameters (training: forward + backward) and 2 x parameters (inference), plus attention's
12 x layers x hidden x sequence length (training) / 4 x ... (inference), as in the PaLM appendix.

    python benchmarks/gpu_mfu.py [--batch 32] [--seq 256] [--steps 30] [--layers 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

# Peak dense bf16 tensor-core FLOP/s by device-name fragment (vendor datasheets; SXM parts).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (after 5 warm-up steps)")
    parser.add_argument("--layers", type=int, default=24)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_mfu: no CUDA device here; nothing measured (run it on a GPU machine)")
        return
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from stiltsearch.trainables.engine import EngineSettings, train

    device = torch.cuda.get_device_name(0)
    config = XLMRobertaConfig(hidden_size=1024, num_hidden_layers=args.layers, num_attention_heads=16,
                              intermediate_size=4096, vocab_size=250002, max_position_embeddings=514)
    encoder = XLMRobertaModel(config, add_pooling_layer=False).cuda()
    params = sum(p.numel() for p in encoder.parameters())
    non_embedding = params - encoder.embeddings.word_embeddings.weight.numel()

    class Loss(torch.nn.Module):  # a stand-in objective: the mean squared activation
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float().pow(2).mean()

    ids = torch.randint(5, 250000, (args.batch, args.seq))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    tokens_per_step = args.batch * args.seq
    attention = 12 * args.layers * 1024 * args.seq  # training attention FLOPs per token
    peak = peak_flops(device)

    warm = 5
    log = train(Loss(), iter(lambda: batch, None), steps=warm + args.steps, lr=1e-5, batch_size=args.batch,
                settings=EngineSettings(precision="bf16"), log_every=1)
    train_tps = log.tokens / log.seconds
    print(f"device: {device}")
    print(f"parameters: {params / 1e6:.0f} M ({non_embedding / 1e6:.0f} M without the embedding matrix)")
    print(f"training tokens/sec (bf16, DeepSpeed, batch {args.batch} x {args.seq}, incl. {warm} warm-up steps): "
          f"{train_tps:.0f}")
    train_flops = train_tps * (6 * non_embedding + attention)
    print(f"training achieved: {train_flops / 1e12:.1f} TFLOP/s")

    model = encoder.to(torch.bfloat16).eval()
    times = []
    with torch.inference_mode():
        for i in range(5 + 20):
            torch.cuda.synchronize()
            start = time.perf_counter()
            model(input_ids=ids.cuda(), attention_mask=batch["attention_mask"].cuda())
            torch.cuda.synchronize()
            if i >= 5:
                times.append(time.perf_counter() - start)
    infer_tps = tokens_per_step / statistics.median(times)
    infer_flops = infer_tps * (2 * non_embedding + attention / 3)
    print(f"inference tokens/sec (bf16, median of 20 after 5 warm-up): {infer_tps:.0f}")
    print(f"inference achieved: {infer_flops / 1e12:.1f} TFLOP/s")
    if peak is None:
        print(f"MFU: unknown peak for {device!r}; add it to PEAK_BF16", file=sys.stderr)
        return
    print(f"peak bf16 dense: {peak / 1e12:.0f} TFLOP/s")
    print(f"training MFU: {100 * train_flops / peak:.1f} %")
    print(f"inference MFU: {100 * infer_flops / peak:.1f} %")


if __name__ == "__main__":
    main()
