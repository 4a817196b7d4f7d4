"""PyTorch peer for `npm run bench`: the same tower as src/model/tower.ts (pre-LN, exact GELU,
learned positions, tied softmax, Adam), timed the same way. Prints one JSON line.
Run with Debian's /usr/bin/python3 (python3-torch + libopenblas0-pthread)."""
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

a = json.loads(sys.argv[1])
torch.set_num_threads(a.get("threads", 1))
torch.manual_seed(0)
d, L, H, S, V, B = a["d_model"], a["n_layers"], a["n_heads"], a["seq_len"], a["vocab"], a["batch"]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc_in, self.fc_out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        h = self.ln_1(x)
        q, k, v = (t(h).view(B, S, H, d // H).transpose(1, 2) for t in (self.q, self.k, self.v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // H) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, S, d)
        x = x + self.o(y)
        return x + self.fc_out(F.gelu(self.fc_in(self.ln_2(x))))


class Tower(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, d), nn.Embedding(S, d)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids, targets, mask):
        x = self.wte(ids) + self.wpe(torch.arange(S))
        for b in self.h:
            x = b(x, mask)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


m = Tower()
opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.99))
mask = torch.triu(torch.full((S, S), -1e9), 1)
ids = torch.randint(3, V, (B, S))
tg = torch.randint(3, V, (B, S))
times = []
for i in range(a["warmup"] + a["steps"]):
    t0 = time.perf_counter()
    loss = m(ids, tg, mask)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    if i >= a["warmup"]:
        times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"median_step_s": times[len(times) // 2], "torch": torch.__version__, "params": sum(p.numel() for p in m.parameters())}))
