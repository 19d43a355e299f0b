#!/usr/bin/env python3
"""flashslide GPU benchmark: our CUDA kernels next to PyTorch's, in one process, one table.

    python3 bench/gpu/bench.py            (after `make -C kernels cuda`; writes $OUT/bench.json)

Attention: our flash kernel (every compiled tile variant; the default and the fastest are
reported) against torch scaled_dot_product_attention with its flash, cuDNN and efficient
backends, TFLOP/s = 4*B*H*N^2*d / time. Ours reads the packed qkv [B, N, 3, H, d] the engine
uses; PyTorch gets contiguous [B, H, N, d] tensors holding the same values (its best case).
ViT-L/16 with 4 register tokens: our engine's device forward (uint8 RGB in, fp32 features
out) against timm's eager bf16 forward_features on the same random weights: timm builds the
model, we load its state dict from a safetensors file written here. Mpx/s = B*H*W / time.

Both sides run on the same CUDA stream and are timed the same way: warm-up, then CUDA events
around each of `iters` calls, median. Our kernels are reached through ctypes
(kernels/build/libflashslide_cuda.so, C API in kernels/cuda/capi.cu).
"""
import ctypes
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

ROOT = Path(__file__).resolve().parents[2]
LIB_PATH = os.environ.get("FLASHSLIDE_CUDA_LIB", str(ROOT / "kernels" / "build" / "libflashslide_cuda.so"))
OUT = Path(os.environ.get("OUT", "/tmp"))
ATTN_SHAPES = [(8, 16, 4101, 64), (2, 16, 16389, 64), (1, 16, 65541, 64), (8, 16, 5330, 80), (2, 8, 16384, 128)]
VIT_CASES = [(224, 256), (1024, 8), (2048, 2)]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_lib():
    lib = ctypes.CDLL(LIB_PATH)
    vp, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    lib.fs_last_error.restype = ctypes.c_char_p
    lib.fs_attn_variant_count.argtypes = [i]
    lib.fs_attn_variant_name.argtypes = [i, i, ctypes.c_char_p, i]
    lib.fs_attn_forward.argtypes = [vp, vp, i, i, i, i, f, i, vp]
    lib.fs_attn_default_variant_name.argtypes = [i, i, i, i, ctypes.c_char_p, i]
    lib.fs_vit_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.fs_vit_load.restype = vp
    lib.fs_vit_free.argtypes = [vp]
    lib.fs_vit_tokens.argtypes = [vp, i, i]
    lib.fs_vit_forward.argtypes = [vp, vp, i, i, i, vp, vp]
    lib.fs_vit_peak_bytes.argtypes = [vp]
    lib.fs_vit_peak_bytes.restype = ctypes.c_longlong
    lib.fs_vit_fused_residual.argtypes = [vp]
    lib.fs_vit_set_profile.argtypes = [vp, i]
    lib.fs_vit_set_gemm_autotune.argtypes = [vp, i]
    lib.fs_vit_stage_name.restype = ctypes.c_char_p
    lib.fs_vit_stage_name.argtypes = [i]
    lib.fs_vit_stage_ms.argtypes = [vp, ctypes.POINTER(ctypes.c_float)]
    return lib


def checked(lib, rc):
    if rc != 0:
        raise RuntimeError(lib.fs_last_error().decode())


def time_ms(fn, warmup, iters):
    """Median of `iters` CUDA-event-timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def rel_err(a, b):
    a, b = a.float(), b.float()
    if not torch.isfinite(a).all():
        return float("nan")
    return float((a - b).norm() / b.norm())


def bench_attention(lib, stream):
    rows = []
    for B, H, N, d in ATTN_SHAPES:
        torch.manual_seed(B * 1000003 + N * 7 + d)
        qkv = torch.randn(B, N, 3, H, d, device="cuda", dtype=torch.bfloat16)
        q, k, v = (t.transpose(1, 2).contiguous() for t in qkv.unbind(2))  # [B, H, N, d]
        out = torch.empty(B, N, H, d, device="cuda", dtype=torch.bfloat16)
        scale = 1.0 / math.sqrt(d)
        flops = 4.0 * B * H * N * N * d
        iters = 10 if N > 30000 else 20
        row = {"B": B, "H": H, "N": N, "d": d}
        # PyTorch backends
        ref = None
        for name, be in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                         ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
            try:
                with sdpa_kernel(be):
                    o = F.scaled_dot_product_attention(q, k, v)
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), 3, iters)
                row[name] = flops / ms / 1e9
                if ref is None:
                    ref = o.transpose(1, 2)  # [B, N, H, d]
            except Exception as e:  # a backend that does not support the shape
                row[name] = None
                row[name + "_error"] = str(e).splitlines()[0][:100]
        # SDPA with no backend forced: what timm's Attention gets by default
        ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), 3, iters)
        row["torch_default"] = flops / ms / 1e9
        # ours, every variant
        best = None
        for vi in range(lib.fs_attn_variant_count(d)):
            buf = ctypes.create_string_buffer(64)
            checked(lib, lib.fs_attn_variant_name(d, vi, buf, 64))
            vname = buf.value.decode()
            out.fill_(float("nan"))
            call = lambda: checked(lib, lib.fs_attn_forward(qkv.data_ptr(), out.data_ptr(), B, N, H, d, scale, vi, stream))
            call()
            torch.cuda.synchronize()
            err = rel_err(out, ref) if ref is not None else None
            ms = time_ms(call, 3, iters)
            tf = flops / ms / 1e9
            row.setdefault("variants", {})[vname] = {"tflops": tf, "relerr_vs_torch": err}
            if best is None or tf > best[0]:
                best = (tf, vname)
        # the default (variant -1: what the ViT runs), timed on its own after the sweep
        buf = ctypes.create_string_buffer(64)
        checked(lib, lib.fs_attn_default_variant_name(d, B, N, H, buf, 64))
        out.fill_(float("nan"))
        call = lambda: checked(lib, lib.fs_attn_forward(qkv.data_ptr(), out.data_ptr(), B, N, H, d, scale, -1, stream))
        call()
        torch.cuda.synchronize()
        row["ours_relerr"] = rel_err(out, ref) if ref is not None else None
        row["ours_default"], row["ours_default_variant"] = flops / time_ms(call, 3, iters) / 1e9, buf.value.decode()
        row["ours_best"], row["ours_best_variant"] = best
        print(json.dumps(row), flush=True)
        rows.append(row)
        del qkv, q, k, v, out, ref
        torch.cuda.empty_cache()
    return rows


def timm_stages(m, M, T, iters):
    """What timm's eager ops cost for the same shapes: one block's ops timed one by one
    (bf16, cuBLAS through torch), times the depth. A guide to where our time differs."""
    blk = m.blocks[0]
    D = 1024
    L = len(m.blocks)
    xb = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    att = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    hid = torch.randn(M, 4 * D, device="cuda", dtype=torch.bfloat16)
    ops = {
        "ln": lambda: blk.norm1(xb),
        "qkv": lambda: blk.attn.qkv(xb),
        "proj": lambda: blk.attn.proj(att),
        "fc1": lambda: blk.mlp.fc1(xb),
        "act": lambda: blk.mlp.act(hid),
        "fc2": lambda: blk.mlp.fc2(hid),
        "residual_add": lambda: xb + att,
    }
    out = {}
    for k, fn in ops.items():
        per = time_ms(fn, 2, iters)
        out[k] = round(per * L * (2 if k in ("ln", "residual_add") else 1), 2)
    del xb, att, hid
    return out


def bench_vit(lib, stream, tmp):
    import timm
    from safetensors.torch import save_file

    rows = []
    for img, bs in VIT_CASES:
        row = {"img": img, "batch": bs}
        try:
            torch.manual_seed(img)
            m = timm.create_model("vit_large_patch16_224", pretrained=False, img_size=img, num_classes=0, reg_tokens=4,
                                  no_embed_class=True).cuda().eval().to(torch.bfloat16)
            wpath = Path(tmp) / f"vitl16_reg4_{img}.safetensors"
            save_file({k: t.detach().cpu().contiguous() for k, t in m.state_dict().items()}, str(wpath))
            wpath.with_suffix(".json").write_text(json.dumps(
                {"num_heads": 16, "patch_size": 16, "mlp_act": "gelu", "no_embed_class": True, "mean": MEAN, "std": STD}))
            t0 = time.time()
            h = lib.fs_vit_load(str(wpath).encode(), str(wpath.with_suffix(".json")).encode())
            if not h:
                raise RuntimeError("fs_vit_load: " + lib.fs_last_error().decode())
            row["ours_load_s"] = round(time.time() - t0, 1)
            T = lib.fs_vit_tokens(h, img, img)
            u8 = torch.randint(0, 256, (bs, img, img, 3), device="cuda", dtype=torch.uint8)
            mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
            std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)
            x = ((u8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std).to(torch.bfloat16).contiguous()
            ours = torch.empty(bs, T, 1024, device="cuda", dtype=torch.float32)
            call = lambda: checked(lib, lib.fs_vit_forward(h, u8.data_ptr(), bs, img, img, ours.data_ptr(), stream))
            with torch.inference_mode():
                iters = 10 if img <= 1024 else 6
                # GEMM autotune on (side number), then off (the default, timed for the table).
                lib.fs_vit_set_gemm_autotune(h, 1)
                call()
                torch.cuda.synchronize()
                row["ours_ms_gemm_autotune"] = time_ms(call, 2, iters)
                lib.fs_vit_set_gemm_autotune(h, 0)
                call()
                torch.cuda.synchronize()
                theirs = m.forward_features(x)
                row["relerr_vs_timm"] = rel_err(ours, theirs)
                row["tokens"] = T
                ms_ours = time_ms(call, 2, iters)
                # Per-stage breakdown of one (synchronising) forward.
                lib.fs_vit_set_profile(h, 1)
                n_st = lib.fs_vit_stage_count()
                st = (ctypes.c_float * n_st)()
                call()
                lib.fs_vit_stage_ms(h, st)
                lib.fs_vit_set_profile(h, 0)
                row["ours_stage_ms"] = {lib.fs_vit_stage_name(k).decode(): round(st[k], 2) for k in range(n_st)}
                row["timm_stage_ms"] = timm_stages(m, bs * T, T, iters)
                torch.cuda.reset_peak_memory_stats()
                ms_timm = time_ms(lambda: m.forward_features(x), 2, iters)
                row["timm_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
            row["ours_ms"], row["timm_ms"] = ms_ours, ms_timm
            row["ours_mpx_s"] = bs * img * img / ms_ours / 1e3
            row["timm_mpx_s"] = bs * img * img / ms_timm / 1e3
            row["ours_peak_mib"] = lib.fs_vit_peak_bytes(h) / 2**20
            row["ours_fused_residual"] = bool(lib.fs_vit_fused_residual(h))
            D, L = 1024, 24
            row["model_tflops_ours"] = bs * L * (24 * T * D * D + 4 * T * T * D) / ms_ours / 1e9
            lib.fs_vit_free(h)
            del m, u8, x, ours, theirs
            wpath.unlink()
        except Exception as e:
            row["error"] = repr(e)[:300]
        torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def fmt(v, nd=0):
    return "-" if v is None else f"{v:.{nd}f}"


def table(attn, vit):
    lines = ["| workload | unit | ours (default) | ours (best variant) | torch flash | torch cuDNN | torch efficient "
             "| timm eager | ours / target | relErr vs torch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in attn:
        target = r.get("flash")
        ratio = f"{r['ours_default'] / target:.2f}x flash" if target else "-"
        lines.append(f"| attn B={r['B']} H={r['H']} N={r['N']} d={r['d']} | TFLOP/s | {fmt(r['ours_default'])} "
                     f"({r['ours_default_variant']}) | {fmt(r['ours_best'])} ({r['ours_best_variant']}) | {fmt(r.get('flash'))} "
                     f"| {fmt(r.get('cudnn'))} | {fmt(r.get('efficient'))} | - | {ratio} | {fmt(r.get('ours_relerr'), 4) if r.get('ours_relerr') is not None else '-'} |")
    for r in vit:
        if "error" in r:
            lines.append(f"| ViT-L/16 reg4 {r['img']}px x{r['batch']} | Mpx/s | error: {r['error'][:80]} | | | | | | | |")
            continue
        lines.append(f"| ViT-L/16 reg4 {r['img']}px x{r['batch']} (T={r['tokens']}) | Mpx/s | {fmt(r['ours_mpx_s'], 1)} "
                     f"({fmt(r['ours_ms'], 1)} ms, peak {fmt(r['ours_peak_mib'])} MiB) | - | - | - | - | {fmt(r['timm_mpx_s'], 1)} "
                     f"({fmt(r['timm_ms'], 1)} ms, peak {fmt(r['timm_peak_mib'])} MiB) | {r['ours_mpx_s'] / r['timm_mpx_s']:.2f}x timm "
                     f"| {fmt(r['relerr_vs_timm'], 4)} |")
    return "\n".join(lines)


def main():
    dev = torch.cuda.get_device_name()
    env = {"gpu": dev, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "lib": LIB_PATH}
    try:
        import timm
        env["timm"] = timm.__version__
    except Exception:
        pass
    print(json.dumps(env), flush=True)
    lib = load_lib()
    stream = torch.cuda.current_stream().cuda_stream
    which = sys.argv[1:] or ["attn", "vit"]
    attn = bench_attention(lib, stream) if "attn" in which else []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        vit = bench_vit(lib, stream, tmp) if "vit" in which else []
    (OUT / "bench.json").write_text(json.dumps({"env": env, "attention": attn, "vit": vit}, indent=1))
    print()
    print(f"flashslide vs PyTorch on {dev} (bf16; medians of CUDA-event timings; ours/target: attention vs torch "
          f"flash, ViT vs timm eager)")
    print(table(attn, vit))
    for r in vit:
        if "ours_stage_ms" in r:
            print(f"ViT {r['img']}px x{r['batch']}: ours {r['ours_ms']:.1f} ms (GEMM autotune on: "
                  f"{r['ours_ms_gemm_autotune']:.1f} ms), timm {r['timm_ms']:.1f} ms")
            print(f"  ours stages (ms, one profiled forward): {r['ours_stage_ms']}")
            print(f"  timm ops, timed alone x depth (ms): {r['timm_stage_ms']}")
    for r in attn:
        v = r.get("variants", {})
        print(f"attn N={r['N']} d={r['d']}: torch default SDPA {r['torch_default']:.0f}; ours " + ", ".join(f"{k} {x['tflops']:.0f}" for k, x in v.items()))
    bad = [r for r in attn if r.get("ours_relerr") is None or not r["ours_relerr"] < 2e-2]
    bad += [r for r in vit if "error" in r or not r.get("relerr_vs_timm", 1) < 5e-2]
    if bad:
        print(f"\n{len(bad)} benchmark row(s) with an error or a result far from PyTorch's")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
