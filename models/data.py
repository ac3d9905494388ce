"""Three token sources behind one interface: `TokenData` holds train and held-out token streams.

- synthetic: a seeded Markov chain of order k with Zipf-like transitions; its entropy rate (nats
  per token) is computed exactly, so a fitted irreducible loss can be checked against the truth.
- text: UTF-8 files or a directory, byte-level (vocabulary 256). The default corpus is the Python
  standard library's own sources, found at run time; files go to train or held-out by a hash of
  their relative path, so the split is the same on every machine with the same Python.
- tokens: nanoGPT's format, `train.bin` and `val.bin` of uint16 token ids, memory-mapped.

Streams are 2-D (independent rows x positions); a training window never crosses a row.
"""

from __future__ import annotations

import functools
import sysconfig
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import DataError


@dataclass(frozen=True)
class TokenData:
    train: np.ndarray  # (rows, length) integer tokens
    val: np.ndarray
    vocab_size: int
    entropy_rate: float | None = None  # nats/token, known only for the synthetic source
    description: str = ""

    def batch(self, split: str, batch_size: int, seq_len: int, rng: np.random.Generator):
        """Random windows of seq_len + 1 tokens from one split, as (inputs, targets) int64 tensors."""
        stream = self.train if split == "train" else self.val
        rows = rng.integers(0, stream.shape[0], size=batch_size)
        starts = rng.integers(0, stream.shape[1] - seq_len, size=batch_size)
        return self._windows(stream, rows, starts, seq_len)

    def eval_windows(self, n: int, seq_len: int):
        """n held-out windows spread evenly over the held-out stream: the same for every run."""
        span = self.val.shape[1] - seq_len
        flat = np.arange(n, dtype=np.int64) * (self.val.shape[0] * span) // n
        return self._windows(self.val, flat // span, flat % span, seq_len)

    @staticmethod
    def _windows(stream: np.ndarray, rows: np.ndarray, starts: np.ndarray, seq_len: int):
        import torch  # here: counting a corpus's tokens (sweep propose) must not pay torch's 1 s import

        offsets = starts[:, None] + np.arange(seq_len + 1)
        chunk = torch.from_numpy(np.asarray(stream[rows[:, None], offsets], dtype=np.int64))
        return chunk[:, :-1], chunk[:, 1:]


def load(
    source: str,
    path: str,
    vocab_size: int,
    val_fraction: float,
    seq_len: int,
    markov_order: int = 1,
    zipf_exponent: float = 1.1,
    synthetic_seed: int = 0,
    synthetic_tokens: int = 0,
) -> TokenData:
    if source == "synthetic":
        data = markov_data(vocab_size, markov_order, zipf_exponent, synthetic_seed, synthetic_tokens, val_fraction)
    elif source == "text":
        data = text_data(path, val_fraction)
    elif source == "tokens":
        data = token_file_data(path, vocab_size)
    else:
        raise DataError(f"unknown data source {source!r}; use synthetic, text or tokens")
    for split, stream in (("train", data.train), ("held-out", data.val)):
        if stream.shape[1] <= seq_len + 1:
            raise DataError(f"{split} data ({stream.size} tokens) is shorter than one window of {seq_len + 1}")
    return data


def train_tokens(source: str, path: str, val_fraction: float, synthetic_tokens: int = 0) -> int:
    """Tokens of the training split, without generating synthetic data or reading token files."""
    if source == "synthetic":
        return SYNTHETIC_ROWS * max(1024, synthetic_tokens // SYNTHETIC_ROWS)
    if source == "tokens":
        return (Path(path).expanduser() / "train.bin").stat().st_size // 2
    return text_train_tokens(path, val_fraction)


# --- synthetic -------------------------------------------------------------------------------

SYNTHETIC_ROWS = 64  # independent chains sampled side by side


def markov_chain(vocab_size: int, order: int, zipf_exponent: float, seed: int) -> np.ndarray:
    """Transition table P[state, next] for vocab_size**order states; each row is a Zipf law over a
    random permutation of the vocabulary, so every context has its own likely continuations."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1) ** zipf_exponent
    weights /= weights.sum()
    n_states = vocab_size**order
    ranks = np.argsort(rng.random((n_states, vocab_size)), axis=1)
    return weights[ranks]


def entropy_rate(transitions: np.ndarray, vocab_size: int) -> float:
    """Exact entropy rate (nats/token) of the chain: sum_s pi(s) H(P[s, :])."""
    n_states = transitions.shape[0]
    # State s = (x_{t-k+1}, ..., x_t) in base vocab_size; next state drops the oldest symbol.
    next_state = (np.arange(n_states)[:, None] * vocab_size) % n_states + np.arange(vocab_size)[None, :]
    pi = np.full(n_states, 1.0 / n_states)
    for _ in range(10_000):
        new = np.bincount(next_state.ravel(), weights=(pi[:, None] * transitions).ravel(), minlength=n_states)
        if np.abs(new - pi).max() < 1e-14:
            break
        pi = new
    row_entropy = -(transitions * np.log(transitions)).sum(axis=1)
    return float(pi @ row_entropy)


def sample_chain(transitions: np.ndarray, vocab_size: int, rows: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_states = transitions.shape[0]
    cdf = np.cumsum(transitions, axis=1)
    cdf[:, -1] = 1.0
    out = np.empty((rows, length), dtype=np.uint16)
    state = rng.integers(0, n_states, size=rows)
    for _ in range(64):  # burn in towards the stationary distribution
        token = (cdf[state] < rng.random((rows, 1))).sum(axis=1)
        state = (state * vocab_size) % n_states + token
    for t in range(length):
        token = (cdf[state] < rng.random((rows, 1))).sum(axis=1)
        out[:, t] = token
        state = (state * vocab_size) % n_states + token
    return out


@functools.lru_cache(maxsize=4)
def markov_data(
    vocab_size: int, order: int, zipf_exponent: float, seed: int, tokens: int, val_fraction: float
) -> TokenData:
    if vocab_size**order > 1 << 20:
        raise DataError(f"synthetic chain has {vocab_size}**{order} states; keep vocab_size**markov_order <= 2**20")
    transitions = markov_chain(vocab_size, order, zipf_exponent, seed)
    rows = SYNTHETIC_ROWS
    length = max(1024, tokens // rows)
    val_length = max(1024, int(length * val_fraction))
    train = sample_chain(transitions, vocab_size, rows, length, seed + 1)
    val = sample_chain(transitions, vocab_size, rows, val_length, seed + 2)
    rate = entropy_rate(transitions, vocab_size)
    return TokenData(train, val, vocab_size, rate, f"markov(order={order}, V={vocab_size}, H={rate:.4f} nats)")


# --- text ------------------------------------------------------------------------------------


def default_corpus() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path) -> list[Path]:
    """Every .py file under root but site-packages, sorted; or root itself when it is a file."""
    if root.is_file():
        return [root]
    pattern = "*.py" if root == default_corpus() else "*"
    return sorted(f for f in root.rglob(pattern) if f.is_file() and "site-packages" not in f.parts)


def text_split(path: str, val_fraction: float) -> tuple[Path, list[Path], list[Path]]:
    """The corpus root and its files for training and for held-out evaluation: by a hash of each
    file's path, so that a file never straddles the split (a single file is cut instead)."""
    root = Path(path).expanduser() if path else default_corpus()
    if not root.exists():
        raise DataError(f"text data path {root} does not exist")
    files = corpus_files(root)
    if not files:
        raise DataError(f"no files under {root}")
    if len(files) == 1:
        return root, files, []
    train, val = [], []
    for f in files:
        rel = f.relative_to(root).as_posix().encode()
        (val if zlib.crc32(rel) % 10_000 < val_fraction * 10_000 else train).append(f)
    if not train or not val:
        raise DataError(f"{root} has too few files ({len(files)}) to split train/held-out by file")
    return root, train, val


@functools.lru_cache(maxsize=2)
def text_data(path: str, val_fraction: float) -> TokenData:
    root, train, val = text_split(path, val_fraction)
    if not val:
        blob = np.frombuffer(train[0].read_bytes(), dtype=np.uint8)
        cut = int(len(blob) * (1 - val_fraction))
        return TokenData(blob[None, :cut], blob[None, cut:], 256, None, f"{train[0]} ({len(blob)} bytes)")
    train_blob = np.frombuffer(b"".join(f.read_bytes() for f in train), dtype=np.uint8)
    val_blob = np.frombuffer(b"".join(f.read_bytes() for f in val), dtype=np.uint8)
    description = f"{root} ({len(train) + len(val)} files, {train_blob.size + val_blob.size} bytes)"
    return TokenData(train_blob[None, :], val_blob[None, :], 256, None, description)


def text_train_tokens(path: str, val_fraction: float) -> int:
    """text_data's training tokens (one per byte) from the files' sizes, without reading them."""
    _, train, val = text_split(path, val_fraction)
    if not val:
        return int(train[0].stat().st_size * (1 - val_fraction))
    return sum(f.stat().st_size for f in train)


# --- tokens ----------------------------------------------------------------------------------


def token_file_data(path: str, vocab_size: int) -> TokenData:
    root = Path(path).expanduser()
    streams = []
    for name in ("train.bin", "val.bin"):
        file = root / name
        if not file.is_file():
            raise DataError(f"{file} not found; data.source=tokens needs train.bin and val.bin (uint16)")
        streams.append(np.memmap(file, dtype=np.uint16, mode="r").reshape(1, -1))
    return TokenData(streams[0], streams[1], vocab_size, None, f"{root} (uint16 tokens)")
