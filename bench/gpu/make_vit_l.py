#!/usr/bin/env python3
"""Writes a UNI-shaped ViT-L/16 (timm vit_large_patch16_224, init_values=1e-5, 1024-dim,
24 blocks, 16 heads) with seeded random weights as timm-layout safetensors plus the config the
engine reads beside it, for end-to-end timing of the pipeline at a real model's cost.

    python3 bench/gpu/make_vit_l.py OUT.safetensors

Random weights: the timings are real, the heatmaps mean nothing.
"""
import json
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

out = Path(sys.argv[1])
torch.manual_seed(1024)
m = timm.create_model("vit_large_patch16_224", pretrained=False, init_values=1e-5, num_classes=0,
                      dynamic_img_size=True)
save_file({k: t.detach().contiguous() for k, t in m.state_dict().items()}, str(out))
out.with_suffix(".json").write_text(json.dumps({"num_heads": 16, "patch_size": 16, "mlp_act": "gelu"}))
print(f"{out}: ViT-L/16, {sum(t.numel() for t in m.state_dict().values()) / 1e6:.0f} M parameters")
