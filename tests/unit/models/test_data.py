import numpy as np
import pytest

from models.config import DataError
from models.data import entropy_rate, load, markov_chain, sample_chain, train_tokens


def test_entropy_rate_matches_the_empirical_rate_of_a_long_sample():
    vocab, order = 8, 2
    transitions = markov_chain(vocab, order, zipf_exponent=1.2, seed=3)
    exact = entropy_rate(transitions, vocab)
    tokens = sample_chain(transitions, vocab, rows=64, length=4000, seed=4).astype(np.int64)
    # Empirical conditional entropy from counts of (context, next) over the sample.
    context = tokens[:, :-2] * vocab + tokens[:, 1:-1]
    pairs = np.bincount((context * vocab + tokens[:, 2:]).ravel(), minlength=vocab**3).reshape(vocab**2, vocab)
    probs = pairs / pairs.sum(axis=1, keepdims=True)
    weights = pairs.sum(axis=1) / pairs.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        empirical = -(weights[:, None] * np.where(pairs > 0, probs * np.log(probs), 0)).sum()
    assert empirical == pytest.approx(exact, rel=0.01)
    assert 0 < exact < np.log(vocab)


def test_synthetic_source_is_deterministic_and_knows_its_entropy():
    a = load("synthetic", "", 16, 0.1, 32, markov_order=1, synthetic_seed=5, synthetic_tokens=100_000)
    b = load("synthetic", "", 16, 0.1, 32, markov_order=1, synthetic_seed=5, synthetic_tokens=100_000)
    assert np.array_equal(a.train, b.train) and a.entropy_rate == b.entropy_rate
    assert a.train.max() < 16


def test_default_text_corpus_is_the_standard_library_split_by_file():
    data = load("text", "", 256, 0.05, 128)
    assert data.train.size > 20_000_000  # ~31 MB of Python sources
    assert 0.02 < data.val.size / (data.train.size + data.val.size) < 0.10
    x, y = data.eval_windows(8, 128)
    assert x.shape == (8, 128) and np.array_equal(x[:, 1:].numpy(), y[:, :-1].numpy())
    x2, _ = data.eval_windows(8, 128)
    assert np.array_equal(x.numpy(), x2.numpy())


def test_text_file_and_token_files(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("hello world, " * 1000)
    data = load("text", str(text), 256, 0.1, 16)
    assert data.train.size + data.val.size == 13_000
    (tmp_path / "tok").mkdir()
    np.arange(5000, dtype=np.uint16).tofile(tmp_path / "tok" / "train.bin")
    np.arange(500, dtype=np.uint16).tofile(tmp_path / "tok" / "val.bin")
    tokens = load("tokens", str(tmp_path / "tok"), 5000, 0.1, 16)
    x, y = tokens.batch("train", 4, 16, np.random.default_rng(0))
    assert np.array_equal((x + 1).numpy(), y.numpy())  # consecutive ids: targets are inputs shifted by one


def test_missing_or_too_short_data_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="train.bin"):
        load("tokens", str(tmp_path), 100, 0.1, 16)
    (tmp_path / "tiny.txt").write_text("abc")
    with pytest.raises(DataError, match="shorter"):
        load("text", str(tmp_path / "tiny.txt"), 256, 0.5, 16)


def test_train_tokens_counts_the_training_split_without_loading_it(tmp_path):
    for tokens in (5_000, 100_000, 1_234_567):
        assert (
            train_tokens("synthetic", "", 0.05, tokens)
            == load("synthetic", "", 64, 0.05, 16, 1, 1.1, 3, tokens).train.size
        )
    (tmp_path / "a.txt").write_bytes(b"x" * 5000)
    assert (
        train_tokens("text", str(tmp_path / "a.txt"), 0.1)
        == load("text", str(tmp_path / "a.txt"), 256, 0.1, 16).train.size
    )
    np.arange(3000, dtype=np.uint16).tofile(tmp_path / "train.bin")
    np.arange(500, dtype=np.uint16).tofile(tmp_path / "val.bin")
    assert train_tokens("tokens", str(tmp_path), 0.0) == 3000


def test_a_corpus_of_files_is_counted_from_their_sizes_as_its_training_split(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        (tmp_path / f"dir{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"dir{i % 3}" / f"f{i}.txt").write_bytes(bytes(rng.integers(32, 127, int(rng.integers(10, 500)))))
    assert train_tokens("text", str(tmp_path), 0.2) == load("text", str(tmp_path), 256, 0.2, 4).train.size
