"""Training speed: our trainer (models/train.py) against a plain reference loop, side by side in one run,
on CPU always and on the GPU when torch sees one (issue 13's goals).

    .venv/bin/python bench/train_speed.py [--json] [--quick] [--skip-cpu]

Every measurement runs in a process of its own (this file with --worker), so that neither torch's
global settings nor compile caches in memory leak from one to the next, and so that runs sharing a
device really run side by side. A measurement times the steps after WARMUP_STEPS (compilation and the
first steps excluded) to the end of the last step, synchronized; runs side by side start timing
together (a barrier) and their aggregate is all their timed tokens over the span from the first
start to the last end. The reference is the same model (models/gpt.py) in a loop as one writes it:
eager fp32 (TF32 off), torch's default AdamW over all parameters, `loss.item()` every step.

CPU:
- ours vs reference on a small proxy, one thread pinned to one core, alternately, best of several:
  tokens/s and `speedup` (ours / reference);
- slots: on the first SLOT_CORES cores, the aggregate tokens/s of one run on all of them (threads =
  cores) against one run per core side by side, each pinned to its core with one thread (what the
  local queue does with launcher.cpus_per_run=1), and against the same runs unpinned with threads =
  cores each (the oversubscription the queue avoids).
GPU (when there is one):
- a ~100M-parameter proxy (d_model 1024, 8 layers, seq_len 1024, batch 64): ours (bf16 autocast, torch.compile,
  fused AdamW) vs the reference: tokens/s, achieved FLOP/s and MFU against the device's peak
  (models/hardware.py), `speedup`;
- packing: K = 1, 2, 4 tiny proxies side by side on the one GPU (launcher.runs_per_gpu = K), each a
  process as the local queue starts them: aggregate tokens/s and its ratio to K = 1;
- loss: the final eval loss of one short run trained in bf16 and in fp32, and their relative gap.

Goals: CPU speedup >= 1; on an H100, MFU >= 40% for the 100M proxy, K = 4 aggregate >= 2x K = 1,
bf16's loss within 1% of fp32's. Progress lines go to stderr as each measurement ends; --json prints
one document on stdout at the end. Synthetic data only: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere, the checkout's packages first

WARMUP_STEPS = 3  # untimed: compilation, allocator and cache warm-up
SLOT_CORES = 4  # the CPU slots comparison uses at most this many cores: on a big node it would take long


@dataclass(frozen=True)
class Proxy:
    """A model shape and batch to time, on synthetic data."""

    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    batch_size: int
    vocab_size: int = 512
    steps: int = 30  # WARMUP_STEPS of them untimed
    final_eval_sequences: int = 64  # the loss a run reports (after the timing)


CPU_PROXY = Proxy(d_model=128, n_layers=2, n_heads=4, seq_len=128, batch_size=16, steps=40)
CPU_QUICK = Proxy(d_model=64, n_layers=2, n_heads=2, seq_len=64, batch_size=8, steps=12)
GPU_PROXY_100M = Proxy(d_model=1024, n_layers=8, n_heads=16, seq_len=1024, batch_size=64, steps=30)
GPU_TINY = Proxy(d_model=128, n_layers=2, n_heads=2, seq_len=256, batch_size=16, steps=600)
GPU_LOSS = Proxy(d_model=256, n_layers=4, n_heads=4, seq_len=256, batch_size=32, steps=400, final_eval_sequences=256)
PACKING = (1, 2, 4)


@dataclass(frozen=True)
class Job:
    """One measurement, handed to a worker process as JSON."""

    trainer: str  # ours | reference
    proxy: Proxy
    device: str  # cpu | cuda
    threads: int
    cpus: tuple[int, ...] = ()  # pin to these cores; () = leave the affinity alone
    precision: str = "auto"
    compile: str = "auto"
    barrier: str = ""  # a directory where the `together` workers of a group meet before timing
    together: int = 1


def run_spec(proxy: Proxy, precision: str = "auto"):
    from sweep.spec import DataSpec, RunSpec

    tokens = proxy.steps * proxy.batch_size * proxy.seq_len
    data = DataSpec("synthetic", "", proxy.vocab_size, 0.5, synthetic_tokens=64 * 4 * proxy.seq_len)
    return RunSpec(
        d_model=proxy.d_model, n_layers=proxy.n_layers, n_heads=proxy.n_heads, seq_len=proxy.seq_len, mlp="gelu",
        positions="rotary", tokens=tokens, batch_size=proxy.batch_size, lr=4e-3 * 64 / proxy.d_model,
        lr_ref_width=64, warmup_frac=0.05, min_lr_ratio=0.1, weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0,
        eval_points=1, eval_sequences=8, final_eval_sequences=proxy.final_eval_sequences, data=data, seed=0,
        precision=precision,
    )  # fmt: skip


# --- a worker: one measurement ------------------------------------------------------------------


class Timer:
    """on_step's callback: synchronizes after the warm-up steps, waits for the other workers of its
    group, starts the clock; stops it, synchronized, after the last step."""

    def __init__(self, job: Job, total_steps: int) -> None:
        self.job, self.total_steps, self.started, self.ended = job, total_steps, 0.0, 0.0

    def __call__(self, step: int, total: int = 0, loss: float | None = None, tokens_per_s: float = 0.0) -> None:
        if step == WARMUP_STEPS:
            self.sync()
            self.meet()
            self.started = time.time()
        elif step == self.total_steps:
            self.sync()
            self.ended = time.time()

    def sync(self) -> None:
        import torch

        if self.job.device == "cuda":
            torch.cuda.synchronize()

    def meet(self) -> None:
        if not self.job.barrier:
            return
        barrier = Path(self.job.barrier)
        (barrier / str(os.getpid())).touch()
        while len(list(barrier.iterdir())) < self.job.together:
            time.sleep(0.01)


def measure(job: Job) -> dict:
    if job.cpus:
        os.sched_setaffinity(0, job.cpus)
    import torch

    torch.set_num_threads(job.threads)
    spec = run_spec(job.proxy, job.precision)
    timer = Timer(job, spec.steps)
    loss = (train_ours if job.trainer == "ours" else train_reference)(spec, job, timer)
    timed_tokens = (spec.steps - WARMUP_STEPS) * spec.batch_size * spec.seq_len
    return {"started": timer.started, "ended": timer.ended, "tokens": timed_tokens,
            "tokens_per_s": timed_tokens / (timer.ended - timer.started), "loss": loss}  # fmt: skip


def train_ours(spec, job: Job, timer: Timer) -> float:
    from models.config import TrainOptions
    from models.train import train
    from sweep.rundir import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        options = TrainOptions(device=job.device, threads=job.threads, checkpoint=False, compile=job.compile,
                               on_step=timer)  # fmt: skip
        return train(spec, RunDir(Path(tmp) / spec.run_id), options)["loss"]


def train_reference(spec, job: Job, timer: Timer) -> float:
    """The plain loop: eager, fp32, default AdamW, the loss read back every step."""
    import numpy as np
    import torch

    from models.config import model_config
    from models.gpt import GPT
    from models.train import evaluate, load_data

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(spec.seed)
    device = torch.device(job.device)
    data = load_data(spec)
    model = GPT(model_config(spec)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2),
                                  weight_decay=spec.weight_decay)  # fmt: skip
    for step in range(spec.steps):
        x, y = data.batch("train", spec.batch_size, spec.seq_len, np.random.default_rng([spec.seed, step]))
        _, loss = model(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        optimizer.step()
        loss.item()
        timer(step + 1)
    return evaluate(model, data.eval_windows(spec.final_eval_sequences, spec.seq_len), device)


# --- the orchestra: workers side by side, sections, the document ----------------------------------


def run_together(jobs: list[Job]) -> list[dict]:
    """Run the jobs as worker processes side by side, timed together; their measurements."""
    with tempfile.TemporaryDirectory() as barrier:
        jobs = [replace(j, barrier=barrier, together=len(jobs)) for j in jobs]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(j.threads for j in jobs)), "WANDB_MODE": "disabled"}
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", json.dumps(asdict(j))],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for j in jobs
        ]
        outputs = [p.communicate()[0] for p in processes]
    if any(p.returncode for p in processes):
        raise RuntimeError(f"a worker failed (exit codes {[p.returncode for p in processes]}); see its stderr above")
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def aggregate(measurements: list[dict]) -> float:
    """All timed tokens over the span from the first start to the last end."""
    span = max(m["ended"] for m in measurements) - min(m["started"] for m in measurements)
    return sum(m["tokens"] for m in measurements) / span


def model_facts(proxy: Proxy) -> dict:
    from models.config import model_config, shape_counts

    n, n_total, fpt = shape_counts(model_config(run_spec(proxy)))
    return {**asdict(proxy), "N": n, "N_total": n_total, "flops_per_token": fpt}


def ours_vs_reference(proxy: Proxy, device: str, threads: int, repeats: int, cpus: tuple[int, ...] = ()) -> dict:
    """Each `repeats` times, alternately (the machine's load drifts); the best of each."""
    best = {"ours": 0.0, "reference": 0.0}
    for _ in range(repeats):
        for trainer in best:
            measured = run_together([Job(trainer, proxy, device, threads, cpus)])[0]["tokens_per_s"]
            best[trainer] = max(best[trainer], measured)
    section = {"model": model_facts(proxy), "threads": threads, "ours_tokens_per_s": best["ours"],
               "reference_tokens_per_s": best["reference"], "speedup": best["ours"] / best["reference"]}  # fmt: skip
    say(f"{device}: ours {best['ours']:,.0f} tokens/s, reference {best['reference']:,.0f}, "
        f"speedup {section['speedup']:.2f}x (best of {repeats})")  # fmt: skip
    return section


def cpu_slots(proxy: Proxy, cores: list[int]) -> dict:
    """One run on all cores against one pinned run per core, and against unpinned runs on all cores each."""
    width = len(cores)
    one = run_together([Job("ours", proxy, "cpu", width)])
    pinned = run_together([Job("ours", proxy, "cpu", 1, cpus=(c,)) for c in cores])
    unpinned = run_together([Job("ours", proxy, "cpu", width) for _ in cores])
    section = {"cores": width, "one_run_all_cores_tokens_per_s": aggregate(one),
               "pinned_run_per_core_tokens_per_s": aggregate(pinned),
               "unpinned_runs_all_cores_each_tokens_per_s": aggregate(unpinned)}  # fmt: skip
    section["slots_ratio"] = section["pinned_run_per_core_tokens_per_s"] / section["one_run_all_cores_tokens_per_s"]
    say(f"cpu slots: 1 run x {width} threads {aggregate(one):,.0f} tokens/s; {width} pinned runs x 1 thread "
        f"{aggregate(pinned):,.0f} ({section['slots_ratio']:.2f}x); {width} unpinned runs x {width} threads "
        f"{aggregate(unpinned):,.0f}")  # fmt: skip
    return section


def gpu_mfu(proxy: Proxy, threads: int) -> dict:
    import torch

    from models.hardware import device_name, peak_flops

    section = ours_vs_reference(proxy, "cuda", threads, repeats=1)
    fpt = section["model"]["flops_per_token"]
    name = device_name(torch.device("cuda"))
    for who, precision in (("ours", "bf16"), ("reference", "fp32")):
        flops = section[f"{who}_tokens_per_s"] * fpt
        peak = peak_flops(name, precision)
        section[f"{who}_flops_per_s"] = flops
        section[f"{who}_mfu"] = flops / peak if peak else None
    if section["ours_mfu"] is not None:
        say(f"cuda: ours {section['ours_flops_per_s'] / 1e12:.0f} TFLOP/s, MFU {section['ours_mfu']:.1%} of {name}'s "
            f"bf16 peak; reference MFU {section['reference_mfu']:.1%} of its fp32 peak")  # fmt: skip
    return section


def gpu_packing(proxy: Proxy, threads: int) -> dict:
    runs = {}
    for k in PACKING:
        runs[k] = aggregate(run_together([Job("ours", proxy, "cuda", threads) for _ in range(k)]))
        say(f"cuda packing: K={k} tiny proxies, aggregate {runs[k]:,.0f} tokens/s ({runs[k] / runs[1]:.2f}x K=1)")
    return {"model": model_facts(proxy), "aggregate_tokens_per_s": {str(k): v for k, v in runs.items()},
            "ratio_to_k1": {str(k): v / runs[1] for k, v in runs.items()}}  # fmt: skip


def gpu_loss(proxy: Proxy, threads: int) -> dict:
    bf16, fp32 = run_together([Job("ours", proxy, "cuda", threads, precision="bf16"),
                               Job("ours", proxy, "cuda", threads, precision="fp32", compile="false")])  # fmt: skip
    gap = abs(bf16["loss"] - fp32["loss"]) / fp32["loss"]
    say(f"cuda loss after {proxy.steps} steps: bf16 {bf16['loss']:.4f}, fp32 {fp32['loss']:.4f} ({gap:.2%} apart)")
    return {"model": model_facts(proxy), "bf16_loss": bf16["loss"], "fp32_loss": fp32["loss"], "relative_gap": gap}


def attempt(section, proxy: Proxy, threads: int) -> dict:
    """A GPU section's results, or the error that stopped it: the other sections still run."""
    try:
        return section(proxy, threads)
    except RuntimeError as exc:
        say(f"{section.__name__} failed: {exc}")
        return {"error": str(exc)}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def bench(quick: bool, skip_cpu: bool) -> dict:
    import torch

    from models.hardware import device_name

    cores = sorted(os.sched_getaffinity(0))
    document = {"quick": quick}
    if not skip_cpu:
        proxy = CPU_QUICK if quick else CPU_PROXY
        # one thread on one core: on a small shared machine, OpenMP threads that wait on each other make
        # a multi-threaded timing mostly a reading of the other processes' load
        document["cpu"] = {"device_name": device_name(torch.device("cpu")),
                           **ours_vs_reference(proxy, "cpu", 1, 1 if quick else 5, cpus=tuple(cores[:1])),
                           "slots": cpu_slots(proxy, cores[:SLOT_CORES])}  # fmt: skip
    if torch.cuda.is_available():
        threads = min(4, len(cores))
        document["cuda"] = {"device_name": device_name(torch.device("cuda")),
                            **attempt(gpu_mfu, GPU_PROXY_100M, threads),
                            "packing": attempt(gpu_packing, GPU_TINY, threads),
                            "loss": attempt(gpu_loss, GPU_LOSS, threads)}  # fmt: skip
    else:
        say("no GPU: the GPU sections are skipped")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="a smaller CPU proxy, no repeats (the test's mode)")
    parser.add_argument("--skip-cpu", action="store_true", help="the GPU sections only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        payload = json.loads(args.worker)
        job = Job(**{**payload, "proxy": Proxy(**payload["proxy"]), "cpus": tuple(payload["cpus"])})
        print(json.dumps(measure(job)))
        return
    document = bench(args.quick, args.skip_cpu)
    print(json.dumps(document, indent=2) if args.json else render(document))


def render(document: dict) -> str:
    """Ours against the reference per device, one line each (the progress lines above hold the rest)."""
    lines = []
    for device in ("cpu", "cuda"):
        if "speedup" in document.get(device, {}):
            d = document[device]
            lines.append(f"{device} ({d['device_name']}), N={d['model']['N']:,}: ours {d['ours_tokens_per_s']:,.0f} "
                         f"tokens/s, reference {d['reference_tokens_per_s']:,.0f}, "
                         f"speedup {d['speedup']:.2f}x")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
