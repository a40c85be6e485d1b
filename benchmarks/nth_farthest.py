r"""Trains a recurrent core on the N-th farthest task (Santoro et al., 2018, section 4.1).

The model is the paper's: the core reads one vector per time step (``(x; label; n; m)``,
see :mod:`rmc_core.nth_farthest`), its output after the last step goes through a 4-layer
MLP of 256 units with ReLU, then a Linear layer to ``num_vectors`` logits; the loss is the
softmax cross-entropy (applied once), the optimiser Adam. Test accuracy is measured on
fresh batches from a separate random stream, never seen in training.

Examples::

    # the reduced task (4 vectors of 4 dims): the RMC setting that leaves the 2/N plateau
    # (batch 1600 is what it takes: the same run at batch 256 stays on it; about 20 min on
    # 2 CPU cores, 3 min on a GPU, docs/nth_farthest.md), and the LSTM baseline
    python benchmarks/nth_farthest.py --core rmc --num-vectors 4 --num-dims 4 \
        --mem-slots 4 --head-size 32 --num-heads 4 --batch-size 1600 --lr 1e-3 --steps 4000
    python benchmarks/nth_farthest.py --core lstm --num-vectors 4 --num-dims 4 --batch-size 1600 --lr 1e-3
    # the question DeepMind's generator asks (distance rank of the vector labelled n)
    python benchmarks/nth_farthest.py --core rmc --num-vectors 4 --num-dims 4 --question rank
    # the paper's setting
    python benchmarks/nth_farthest.py --core rmc --num-vectors 8 --num-dims 16 \
        --mem-slots 8 --head-size 256 --num-heads 8 --batch-size 1600 --lr 1e-4
    # one PNG comparing finished runs
    python benchmarks/nth_farthest.py --plot runs/nth_farthest/nth_farthest_rmc_4x4.json \
        runs/nth_farthest/nth_farthest_lstm_4x4.json --png runs/nth_farthest/4x4.png

Unless ``--json`` / ``--png`` say otherwise, a run writes its curve and plot under
``runs/nth_farthest/`` (git-ignored), named by core and task size.

Diagnostics of the 2/N plateau (docs/nth_farthest.md). Answering needs every
vector found again by its label; these take that step apart:

* ``--core labelled-vectors`` is no core: the answer head reads the vectors already sorted
  by label (row ``j`` the vector labelled ``j``) plus ``n`` and ``m``, i.e. what a memory
  that bound every vector to its label would hold;
* ``--core whole-sequence`` is no core either: the head reads all steps concatenated in the
  order they were shown, labels as one-hots, so it must do the binding itself;
* ``--binding-probe`` logs ``binding_r2`` at every evaluation: the share of the variance of
  the label-sorted vectors that a ridge read-out (fitted on fresh held-out examples) finds
  in the head's input, i.e. how much of the binding the core's final state holds;
* ``--freeze-core`` trains the head alone on the core's initial random features.

::

    python benchmarks/nth_farthest.py --core labelled-vectors --num-vectors 4 --num-dims 4 --batch-size 256 --lr 1e-3
    python benchmarks/nth_farthest.py --core rmc --binding-probe --batch-size 256 --lr 1e-3 --head-size 32
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from launch.cli import MANY, BadInput, first_paragraph, parse_options, run_command
from rmc_core import make_core
from rmc_core.nth_farthest import nth_farthest_batch, vectors_by_label
from rmc_core.relational_memory import sonnet_linear_init_

RECURRENT_CORES = ("rmc", "lstm")
READOUTS = ("labelled-vectors", "whole-sequence")
"""Diagnostic stand-ins for a core (see the module docstring): they hand the answer head a
fixed view of the whole sequence instead of a recurrent core's final state."""


class LabelledVectors(nn.Module):
    """The vectors sorted by label, then ``n`` and ``m``: a perfectly bound memory (diagnostic)."""

    def __init__(self, num_vectors: int, num_dims: int) -> None:
        super().__init__()
        self.num_vectors, self.num_dims = num_vectors, num_dims
        self.output_size = num_vectors * num_dims + 2 * num_vectors

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs ``[T, B, F]`` -> ``[B, N*D + 2N]``."""
        bound = vectors_by_label(inputs, self.num_vectors, self.num_dims).flatten(1)  # [B, N*D]
        question = inputs[0, :, self.num_dims + self.num_vectors :]  # [B, 2N], the same at every step
        return torch.cat([bound, question], dim=-1)


class WholeSequence(nn.Module):
    """Every step's input concatenated in the order shown (diagnostic)."""

    def __init__(self, num_vectors: int, num_dims: int) -> None:
        super().__init__()
        self.output_size = num_vectors * (num_dims + 3 * num_vectors)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs ``[T, B, F]`` -> ``[B, T*F]``."""
        return inputs.transpose(0, 1).flatten(1)


class NthFarthestModel(nn.Module):
    """Core over the sequence, then the paper's answer head on its final output.

    ``core`` is a recurrent core (``initial_state`` / ``unroll``) or one of the diagnostic
    read-outs (:class:`LabelledVectors`, :class:`WholeSequence`), which map the whole
    ``[T, B, F]`` sequence to the head's input at once.
    """

    def __init__(self, core: nn.Module, num_vectors: int, mlp_width: int = 256, mlp_layers: int = 4,
                 head_init: str = "sonnet") -> None:
        super().__init__()
        self.core = core
        layers: list[nn.Module] = []
        width = core.output_size
        for _ in range(mlp_layers):
            layers += [nn.Linear(width, mlp_width), nn.ReLU()]
            width = mlp_width
        layers.append(nn.Linear(width, num_vectors))
        self.head = nn.Sequential(*layers)
        if head_init == "sonnet":
            # The reference's MLP (snt.nets.MLP) initialises like every Sonnet Linear. PyTorch's
            # default (weights of std 1/sqrt(3 fan_in)) shrinks the signal ~6x in variance per
            # ReLU layer, so the answer barely depends on the core's output at the start.
            for layer in self.head:
                if isinstance(layer, nn.Linear):
                    sonnet_linear_init_(layer)

    def features(self, inputs: Tensor) -> Tensor:
        """inputs ``[T, B, F]`` -> the head's input ``[B, core.output_size]``."""
        if isinstance(self.core, (LabelledVectors, WholeSequence)):
            return self.core(inputs)
        steps, batch = inputs.shape[:2]
        state = self.core.initial_state(batch, device=inputs.device, dtype=inputs.dtype)
        reset = torch.zeros(steps, batch, dtype=torch.bool, device=inputs.device)
        outputs, _ = self.core.unroll(inputs, reset, state)
        return outputs[-1]

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs ``[T, B, F]`` -> logits ``[B, num_vectors]``."""
        return self.head(self.features(inputs))


def build_core(args: NthFarthestOptions, input_size: int) -> nn.Module:
    if args.core == "labelled-vectors":
        return LabelledVectors(args.num_vectors, args.num_dims)
    if args.core == "whole-sequence":
        return WholeSequence(args.num_vectors, args.num_dims)
    if args.core == "rmc":
        return make_core(
            "rmc",
            input_size,
            mem_slots=args.mem_slots,
            head_size=args.head_size,
            num_heads=args.num_heads,
            num_blocks=args.num_blocks,
            gate_style=None if args.gate_style == "none" else args.gate_style,
            attention_mlp_layers=args.attention_mlp_layers,
        )
    return make_core("lstm", input_size, hidden_size=args.lstm_hidden_size)


@torch.no_grad()
def test_accuracy(model: nn.Module, args: NthFarthestOptions, device: torch.device) -> float:
    """Accuracy on ``test_batches`` fresh batches from the held-out stream (seed + 1_000_003)."""
    generator = torch.Generator().manual_seed(args.seed + 1_000_003)
    correct = total = 0
    model.eval()
    for _ in range(args.test_batches):
        batch = nth_farthest_batch(args.batch_size, args.num_vectors, args.num_dims, generator, args.question)
        logits = model(batch.inputs.to(device))
        correct += (logits.argmax(-1).cpu() == batch.targets).sum().item()
        total += batch.targets.numel()
    model.train()
    return correct / total


def ridge_r2(features: Tensor, targets: Tensor, train_fraction: float = 0.8, ridge: float = 1e-3) -> float:
    """R^2 on held-out rows of a ridge regression from ``features`` to ``targets``.

    The first ``train_fraction`` of the rows fit the read-out (features standardised with
    the fitting rows' statistics, a bias column, penalty ``ridge`` per fitting row); the
    rest score it: 1 - mean squared error / mean variance of the target columns (1: the
    targets are a linear function of the features; 0: no better than their mean).

    Raises:
        ValueError: fewer than two rows on either side, or mismatched row counts.
    """
    rows = features.shape[0]
    split = int(rows * train_fraction)
    if targets.shape[0] != rows or split < 2 or rows - split < 2:
        raise ValueError(f"need matching rows and >= 2 on each side of the split, got {rows} and {targets.shape[0]} "
                         f"rows split at {split}")
    features, targets = features.double(), targets.double()
    mean, std = features[:split].mean(0), features[:split].std(0) + 1e-8
    design = torch.cat([(features - mean) / std, torch.ones(rows, 1, dtype=torch.float64)], dim=1)
    fit, held_out = design[:split], design[split:]
    gram = fit.T @ fit + ridge * split * torch.eye(design.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, fit.T @ targets[:split])
    error = ((held_out @ weights - targets[split:]) ** 2).mean()
    return float(1.0 - error / targets[split:].var(0).mean())


@torch.no_grad()
def binding_r2(model: NthFarthestModel, args: NthFarthestOptions, device: torch.device) -> float:
    """How much of the label-sorted vectors a linear read-out finds in the head's input.

    ``args.probe_examples`` fresh sequences from their own stream (seed + 2_000_003), 80% to
    fit the read-out and 20% to score it (:func:`ridge_r2`).
    """
    generator = torch.Generator().manual_seed(args.seed + 2_000_003)
    batch = nth_farthest_batch(args.probe_examples, args.num_vectors, args.num_dims, generator, args.question)
    model.eval()
    features = torch.cat([model.features(chunk.to(device)).cpu() for chunk in batch.inputs.split(4096, dim=1)])
    model.train()
    targets = vectors_by_label(batch.inputs, args.num_vectors, args.num_dims).flatten(1)
    return ridge_r2(features, targets)


def train(args: NthFarthestOptions) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    device = torch.device(args.device)
    input_size = args.num_dims + 3 * args.num_vectors
    model = NthFarthestModel(build_core(args, input_size), args.num_vectors, head_init=args.head_init).to(device)
    if args.freeze_core:
        model.core.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    train_generator = torch.Generator().manual_seed(args.seed)
    num_parameters = sum(p.numel() for p in model.parameters())
    print(f"core={args.core} parameters={num_parameters} input_size={input_size}", flush=True)
    initial_binding_r2 = binding_r2(model, args, device) if args.binding_probe else None
    if initial_binding_r2 is not None:
        print(json.dumps({"step": 0, "binding_r2": initial_binding_r2}), flush=True)
    curve: list[dict] = []
    start = time.perf_counter()
    recent_loss, recent_correct, recent_count = 0.0, 0, 0
    for step in range(1, args.steps + 1):
        batch = nth_farthest_batch(args.batch_size, args.num_vectors, args.num_dims, train_generator, args.question)
        logits = model(batch.inputs.to(device))
        targets = batch.targets.to(device)
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent_loss += loss.item()
        recent_correct += (logits.argmax(-1) == targets).sum().item()
        recent_count += targets.numel()
        out_of_time = args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes
        if step % args.eval_interval == 0 or step == args.steps or out_of_time:
            accuracy = test_accuracy(model, args, device)
            logged_steps = (step - 1) % args.eval_interval + 1
            point = {
                "step": step,
                "examples": step * args.batch_size,
                "wall_seconds": round(time.perf_counter() - start, 2),
                "train_loss": recent_loss / logged_steps,
                "train_accuracy": recent_correct / recent_count,
                "test_accuracy": accuracy,
            }
            if args.binding_probe:
                point["binding_r2"] = binding_r2(model, args, device)
            curve.append(point)
            print(json.dumps(point), flush=True)
            recent_loss, recent_correct, recent_count = 0.0, 0, 0
        if out_of_time:
            print(f"stopping at step {step}: --max-minutes {args.max_minutes} reached", flush=True)
            break
    return {
        "config": vars(args),
        "num_parameters": num_parameters,
        "final_test_accuracy": curve[-1]["test_accuracy"],
        "best_test_accuracy": max(point["test_accuracy"] for point in curve),
        "initial_binding_r2": initial_binding_r2,
        "wall_seconds": round(time.perf_counter() - start, 2),
        "curve": curve,
    }


def plot(results: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for result in results:
        config = result["config"]
        accuracy = [point["test_accuracy"] for point in result["curve"]]
        examples = [point["examples"] / 1e6 for point in result["curve"]]
        if config["core"] == "rmc":
            name = f"RMC {config['mem_slots']}x{config['head_size'] * config['num_heads']}"
            if config.get("num_blocks", 1) > 1:
                name += f" {config['num_blocks']} blocks"
        elif config["core"] == "lstm":
            name = f"LSTM h{config['lstm_hidden_size']}"
        else:
            name = f"head on {config['core']}"
        if config.get("freeze_core"):
            name += " (frozen)"
        where = "GPU" if str(config.get("device", "cpu")).startswith("cuda") else "CPU"
        label = (f"{name}, lr {config['lr']:g}, B {config['batch_size']}, seed {config.get('seed', 0)} "
                 f"({result['wall_seconds'] / 60:.0f} min {where})")
        if config.get("question", "farthest") != results[0]["config"].get("question", "farthest"):
            label += f", {config['question']} question"
        line, = axis.plot(examples, accuracy, label=label)
        if "binding_r2" in result["curve"][0]:
            probed = [(point["examples"] / 1e6, point["binding_r2"]) for point in result["curve"]]
            if result.get("initial_binding_r2") is not None:
                probed.insert(0, (0.0, result["initial_binding_r2"]))
            axis.plot(*zip(*probed), linestyle="--", color=line.get_color(), label=f"binding R^2, {name}")
    config = results[0]["config"]
    axis.axhline(1 / config["num_vectors"], color="grey", linestyle=":", label="chance")
    # Without comparing vectors a model can still answer m when n asks for the last
    # (m itself) and guess among the others: 1/N + (N-1)/N * 1/(N-1) = 2/N.
    axis.axhline(2 / config["num_vectors"], color="grey", linestyle="--", label="no-comparison plateau (2/N)")
    axis.set_xlabel("training examples (millions)")
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1)
    question = {"farthest": "", "rank": ", rank question (DeepMind's generator)"}[config.get("question", "farthest")]
    axis.set_title(f"N-th farthest, {config['num_vectors']} vectors x {config['num_dims']} dims{question}", fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=120)
    print(f"wrote {png}")


RESULTS_DIR = Path("runs/nth_farthest")
"""Where results go unless --json / --png say otherwise (under the git-ignored ``runs/``;
copy a run worth keeping into docs/ by hand)."""


@dataclass
class NthFarthestOptions:
    """What ``benchmarks/nth_farthest.py`` trains (or plots)."""

    core: Literal["rmc", "lstm", "labelled-vectors", "whole-sequence"] = "rmc"
    """The recurrent core, or a diagnostic read-out of the whole sequence (see above)."""
    num_vectors: int = 4
    """Vectors per sequence (paper: 8)."""
    num_dims: int = 4
    """Dimensions per vector (paper: 16)."""
    question: Literal["farthest", "rank"] = "farthest"
    """farthest: the label of the n-th farthest vector from m (the paper's wording); rank: the
    distance rank from m of the vector labelled n (DeepMind's generator)."""
    steps: int = 20000
    """Training steps (batches)."""
    max_minutes: float | None = None
    """Stop training after this wall time."""
    batch_size: int = 1600
    """Sequences per batch (paper: 1600)."""
    lr: float = 1e-4
    """Adam learning rate (paper: 1e-4)."""
    mem_slots: int = 4
    """Memories of the RMC."""
    head_size: int = 64
    """Size of each attention head."""
    num_heads: int = 4
    """Attention heads of the RMC."""
    num_blocks: int = 1
    """Attention blocks per step."""
    gate_style: Literal["unit", "memory", "none"] = "unit"
    """The RMC's gating."""
    attention_mlp_layers: int = 2
    """Layers of the MLP after each attention block."""
    head_init: Literal["sonnet", "torch"] = "sonnet"
    """Answer MLP initialisation: Sonnet's (the reference) or PyTorch's default."""
    lstm_hidden_size: int = 512
    """Hidden units of the LSTM core."""
    freeze_core: bool = False
    """Train the answer head only (diagnostic)."""
    binding_probe: bool = False
    """Log binding_r2: how much of the label-sorted vectors a linear read-out finds in the
    head's input (diagnostic, see above)."""
    probe_examples: int = 10000
    """Fresh sequences per binding probe."""
    eval_interval: int = 250
    """Steps between test evaluations."""
    test_batches: int = 4
    """Held-out batches per evaluation."""
    seed: int = 0
    """Seed of the model and of the training sequences."""
    threads: int = 2
    """Torch CPU threads."""
    device: str = "cpu"
    """Torch device."""
    tf32: bool = False
    """Let float32 matrix products use TF32 on GPUs that have it (faster, 10-bit mantissa)."""
    json: str | None = None
    """Where to write the curve (default: runs/nth_farthest/nth_farthest_<core>_<N>x<D>[_rank].json)."""
    csv: str | None = None
    """Where to write the curve as CSV."""
    png: str | None = None
    """Learning-curve PNG (default: runs/nth_farthest/nth_farthest_<core>_<N>x<D>[_rank].png, or
    runs/nth_farthest/nth_farthest.png with --plot)."""
    plot: list[str] = field(default_factory=list, metadata=MANY)
    """Only plot these result JSONs into --png."""

    def __post_init__(self) -> None:
        if self.freeze_core and self.core not in RECURRENT_CORES:
            raise BadInput(f"--freeze-core needs a recurrent core ({', '.join(RECURRENT_CORES)}), got --core {self.core}")
        if self.probe_examples < 10:
            raise BadInput(f"--probe-examples must be >= 10 (80% fit the read-out, 20% score it), got "
                           f"{self.probe_examples}")


def parse_args(argv: list[str] | None = None) -> NthFarthestOptions:
    """The options from the command line."""
    return parse_options(NthFarthestOptions, argv, prog="benchmarks/nth_farthest.py",
                         description=first_paragraph(__doc__))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.plot:
        plot([json.loads(Path(path).read_text()) for path in args.plot], Path(args.png or RESULTS_DIR / "nth_farthest.png"))
        return
    result = train(args)
    stem = f"nth_farthest_{args.core}_{args.num_vectors}x{args.num_dims}" + ("_rank" if args.question == "rank" else "")
    json_path = Path(args.json or RESULTS_DIR / f"{stem}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    result["config"] = dataclasses.asdict(args)
    json_path.write_text(json.dumps(result, indent=1))
    if args.csv:
        with Path(args.csv).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(result["curve"][0]))
            writer.writeheader()
            writer.writerows(result["curve"])
    plot([result], Path(args.png or RESULTS_DIR / f"{stem}.png"))
    print(
        f"final test accuracy {result['final_test_accuracy']:.3f} (best {result['best_test_accuracy']:.3f}) "
        f"after {result['curve'][-1]['step']} steps, {result['wall_seconds'] / 60:.1f} min"
    )


if __name__ == "__main__":
    sys.exit(run_command(main))
