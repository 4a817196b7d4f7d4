"""PyTorch peer for `npm run bench`: the same tower as src/model/tower.ts (pre-LN, exact GELU,
learned positions, softmax tied to the embedding, biases everywhere, additive -1e9 mask, Adam with
clipping by global norm), written as plain idiomatic PyTorch (nn.Linear, nn.LayerNorm, eager autograd).

A long-lived child: one JSON object per line on stdin, one JSON line answered on stdout, so the
benchmark can alternate engines without paying Python's start-up each round. Times are taken here
with perf_counter around the work alone (no pipe traffic). Commands:

  {"cmd": "setup", "name", "d_model", "n_layers", "n_heads", "ff_mult", "seq_len", "vocab", "batch",
   "weights": path to float32 values in spec order | null, "specs": [[name, shape], ...],
   "ids": [B*S], "targets": [B*S]}                        -> {"params": N}
  {"cmd": "train", "name", "steps", "warmup"}                -> {"times": [s...], "loss": last}
  {"cmd": "forward", "name", "steps", "warmup"}              -> {"times": [...], "row": logits[0, S-1, :]}
  {"cmd": "decode", "name", "prompts": [[...]], "new": n, "reps", "warmup"}
                                                              -> {"times": [...], "tokens": [[...]]}
  {"cmd": "rss"}                                             -> {"rss_mb": now, "maxrss_mb": peak}
  {"cmd": "quit"}

Run with Debian's /usr/bin/python3 (python3-torch + libopenblas0-pthread), OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset, one thread (the caller also sets OMP/OPENBLAS_NUM_THREADS=1)."""
import copy, json, math, resource, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
MASKED = -1e9


class Attn(nn.Module):
    def __init__(self, d, H):
        super().__init__()
        self.H = H
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask, past=None):
        B, S, d = x.shape
        H, dh = self.H, d // self.H
        q, k, v = (p(x).view(B, S, H, dh).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        att = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(dh))
        if mask is not None:
            att = att + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, S, d)
        return self.o_proj(y), (k, v)


class MLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.fc_in, self.fc_out = nn.Linear(d, ff * d), nn.Linear(ff * d, d)

    def forward(self, x):
        return self.fc_out(F.gelu(self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, d, H, ff):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(d), Attn(d, H), nn.LayerNorm(d), MLP(d, ff)

    def forward(self, x, mask, past=None):
        a, kv = self.attn(self.ln_1(x), mask, past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), kv


class Tower(nn.Module):
    """Parameter names equal the toolkit's (wte, wpe, h.<i>.attn.q_proj, ...)."""

    def __init__(self, d, L, H, ff, max_len, V):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, d), nn.Embedding(max_len, d)
        self.h = nn.ModuleList(Block(d, H, ff) for _ in range(L))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids, pos, mask, past=None):
        x = self.wte(ids) + self.wpe(pos)
        cache = []
        for i, b in enumerate(self.h):
            x, kv = b(x, mask, None if past is None else past[i])
            cache.append(kv)
        return self.ln_f(x) @ self.wte.weight.T, cache


def load_weights(m, path, specs):
    flat = torch.from_numpy(np.fromfile(path, dtype="<f4"))
    sd, off = m.state_dict(), 0
    for name, shape in specs:
        n = math.prod(shape)
        t = flat[off : off + n].view(*shape)
        off += n
        # The toolkit stores linear weights [in, out] (GPT-2 Conv1D); nn.Linear holds [out, in].
        if len(shape) == 2 and name not in ("wte.weight", "wpe.weight"):
            t = t.t()
        if sd[name].shape != t.shape:
            raise ValueError(f"{name}: toolkit shape {list(t.shape)} vs torch {list(sd[name].shape)}")
        sd[name].copy_(t)
    if off != flat.numel():
        raise ValueError(f"{path}: {flat.numel()} values, specs use {off}")


def causal(S):
    return torch.triu(torch.full((S, S), MASKED), 1)


models = {}


def setup(a):
    torch.manual_seed(0)
    d, S, B = a["d_model"], a["seq_len"], a["batch"]
    m = Tower(d, a["n_layers"], a["n_heads"], a["ff_mult"], S, a["vocab"])
    if a.get("weights"):
        load_weights(m, a["weights"], a["specs"])
    if "ids" in a:
        ids, tg = torch.tensor(a["ids"]).view(B, S), torch.tensor(a["targets"]).view(B, S)
    else:
        ids, tg = torch.randint(3, a["vocab"], (B, S)), torch.randint(3, a["vocab"], (B, S))
    infer = copy.deepcopy(m).eval()  # forward/decoding use the initial weights, whatever training did
    for p in infer.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    models[a["name"]] = dict(m=m, infer=infer, opt=opt, ids=ids, tg=tg, pos=torch.arange(S).expand(B, S), mask=causal(S), V=a["vocab"])
    return {"params": sum(p.numel() for p in m.parameters())}


def timed(n, warmup, fn):
    times, out = [], None
    for i in range(warmup + n):
        t0 = time.perf_counter()
        out = fn()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times, out


def train(a):
    s = models[a["name"]]
    m, opt = s["m"], s["opt"]

    def step():
        opt.zero_grad(set_to_none=True)
        logits, _ = m(s["ids"], s["pos"], s["mask"])
        loss = F.cross_entropy(logits.view(-1, s["V"]), s["tg"].view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    times, loss = timed(a["steps"], a["warmup"], step)
    return {"times": times, "loss": loss}


def forward(a):
    s = models[a["name"]]

    def fwd():
        with torch.no_grad():
            return s["infer"](s["ids"], s["pos"], s["mask"])[0]

    times, logits = timed(a["steps"], a["warmup"], fwd)
    return {"times": times, "row": logits[0, -1].tolist()}


def decode(a):
    """Greedy decoding with a KV cache (keys/values concatenated per step), as generate() does:
    the prefill picks the first new token, each later one costs one cached step."""
    s = models[a["name"]]
    m = s["infer"]
    prompts = torch.tensor(a["prompts"])  # equal lengths: no padding
    B, P = prompts.shape

    def run():
        with torch.no_grad():
            logits, cache = m(prompts, torch.arange(P).expand(B, P), causal(P))
            tok = logits[:, -1].argmax(-1)
            out = [tok]
            for t in range(a["new"] - 1):
                logits, cache = m(tok[:, None], torch.full((B, 1), P + t), None, cache)
                tok = logits[:, -1].argmax(-1)
                out.append(tok)
            return torch.stack(out, 1)

    times, toks = timed(a["reps"], a["warmup"], run)
    return {"times": times, "tokens": toks.tolist()}


def rss(_):
    with open("/proc/self/statm") as f:
        now = int(f.read().split()[1]) * resource.getpagesize()
    return {"rss_mb": now / 2**20, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


COMMANDS = {"setup": setup, "train": train, "forward": forward, "decode": decode, "rss": rss}

print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    req = json.loads(line)
    if req["cmd"] == "quit":
        break
    try:
        res = COMMANDS[req["cmd"]](req)
    except Exception as e:  # answered, so the caller reports it instead of hanging
        res = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res), flush=True)
