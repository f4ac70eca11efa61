#!/usr/bin/env python3
"""make_hf_refs.py — tiny random-weight HF models and the logits transformers computes for them,
for architectures/features the shared reference set lacks: qwen2 (q/k/v biases, sliding window off)
and llama with Llama-3 RoPE scaling. Run where torch + transformers are installed (the device
machine): python3 scripts/make_hf_refs.py OUT_DIR. Writes OUT_DIR/<name>/{config.json,
model.safetensors, ref.json, logits.f32} in the layout of ../shared/refs/hf."""
import json, os, sys
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

out = sys.argv[1]
torch.manual_seed(0)

def build(name, cfg_kwargs):
    if int(transformers.__version__.split(".")[0]) >= 5 and "rope_scaling" in cfg_kwargs:
        rp = dict(cfg_kwargs.pop("rope_scaling"))  # transformers 5: one rope_parameters dict
        rp["rope_theta"] = cfg_kwargs.pop("rope_theta")
        cfg_kwargs["rope_parameters"] = rp
    cfg = AutoConfig.for_model(**cfg_kwargs)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():  # scale weights up and perturb norms so mistakes show in the logits
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.mul_(4.0)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (1, 37), generator=g)
    with torch.no_grad():
        logits = model(ids).logits[0].float()
        gen = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=True)
    logits.numpy().astype("<f4").tofile(os.path.join(d, "logits.f32"))
    ref = {"input_ids": ids[0].tolist(), "greedy_next8": gen[0, 37:].tolist(),
           "argmax_all": logits.argmax(-1).tolist(), "transformers": transformers.__version__,
           "torch": torch.__version__}
    json.dump(ref, open(os.path.join(d, "ref.json"), "w"))
    print(name, "ok", logits.shape)

common = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, tie_word_embeddings=False)
build("qwen2", dict(model_type="qwen2", rope_theta=1000000.0, use_sliding_window=False, **common))
build("llama3_rope", dict(model_type="llama", head_dim=16, rope_theta=500000.0,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                          **common))
