"""The text data of tapegrad's language models (src/io/text.c), in Python.

Reproduces tg_text_load, tg_text_batch and tg_text_window_batch bit for bit
(same words, shuffle, split, token ids and windows), so that the PyTorch
scripts (tests/bench/torch_gpt.py, torch_gru.py) train and evaluate on the
very batches the C runs see.  Uses only the standard library and numpy.

    import lm_data
    text = lm_data.load("/usr/share/dict/american-english", 0.1, seed)
    x, y = lm_data.batch(text, 0, seed, step, B, T)        # int64 [B, T]
    x, y, rows = lm_data.window_batch(text, 1, k, B, T)    # rows: full rows

Command line (tests/test_text.c compares this output with the C library's):

    python3 lm_data.py dump FILE VAL_FRACTION SEED B T
"""
import math
import sys

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    """splitmix64's output function, mod 2^64."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Text:
    """The fields of tg_text (train and val as numpy int32 arrays)."""

    def __init__(self, vocab, byte_of, id_of, train, val, words_train, words_val):
        self.vocab = vocab
        self.byte_of = byte_of  # 256 ints, -1 past vocab
        self.id_of = id_of      # 256 ints, -1 for bytes not in the file
        self.train = train
        self.val = val
        self.n_train = len(train)
        self.n_val = len(val)
        self.words_train = words_train
        self.words_val = words_val

    def decode(self, ids):
        return bytes(self.byte_of[i] for i in ids).decode("utf-8", "replace")


def load(path, val_fraction, seed):
    """tg_text_load: raises ValueError where the C function returns -1."""
    if not (0 < val_fraction < 1):
        raise ValueError("val_fraction %g must be inside (0, 1)" % val_fraction)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) == 0:
        raise ValueError("%s: the file is empty" % path)
    if b"\0" in data:
        raise ValueError("%s: a NUL byte at offset %d: not a text file" % (path, data.index(b"\0")))
    words = []
    for line in data.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            words.append(line)
    n = len(words)
    if n == 0:
        raise ValueError("%s: no words: every line is empty" % path)
    state = seed & MASK
    for i in range(n - 1, 0, -1):
        state = (state + GOLDEN) & MASK
        j = mix(state) % (i + 1)
        words[i], words[j] = words[j], words[i]
    v = val_fraction * n  # a double product, as in C
    fl = math.floor(v)
    n_val = int(fl) + (1 if v - fl >= 0.5 else 0)
    n_val = min(n_val, n)
    n_train = n - n_val
    train_bytes = b"".join(w + b"\n" for w in words[:n_train])
    val_bytes = b"".join(w + b"\n" for w in words[n_train:])
    if len(train_bytes) < 2 or len(val_bytes) < 2:
        raise ValueError("%s: each split needs at least 2 tokens" % path)
    used = set(train_bytes) | set(val_bytes) | {ord("\n")}
    byte_of = [-1] * 256
    id_of = [-1] * 256
    for i, b in enumerate(sorted(used)):
        byte_of[i] = b
        id_of[b] = i
    table = np.array([max(i, 0) for i in id_of], dtype=np.int32)
    train = table[np.frombuffer(train_bytes, dtype=np.uint8)]
    val = table[np.frombuffer(val_bytes, dtype=np.uint8)]
    return Text(len(used), byte_of, id_of, train, val, n_train, n_val)


def _stream(text, split):
    if split not in (0, 1):
        raise ValueError("split %r must be 0 (train) or 1 (val)" % (split,))
    return text.val if split else text.train


def batch_starts(text, split, seed, index, B, T):
    """The start of each row of tg_text_batch."""
    n = len(_stream(text, split))
    if n <= T:
        raise ValueError("the stream has %d tokens, not more than the context %d" % (n, T))
    out = []
    for b in range(B):
        i = (index * B + b) & MASK
        z = mix((seed + (i + 1) * GOLDEN) & MASK)
        out.append(z % (n - T))
    return out


def batch(text, split, seed, index, B, T):
    """tg_text_batch: x, y as int64 numpy arrays [B, T]."""
    s = _stream(text, split)
    starts = batch_starts(text, split, seed, index, B, T)
    x = np.empty((B, T), dtype=np.int64)
    y = np.empty((B, T), dtype=np.int64)
    for b, st in enumerate(starts):
        x[b] = s[st:st + T]
        y[b] = s[st + 1:st + T + 1]
    return x, y


def window_batch(text, split, k, B, T):
    """tg_text_window_batch: x, y int64 [B, T] and the number of full rows
    (the first ones; the rest are 0)."""
    s = _stream(text, split)
    n = len(s)
    windows = (n - 1) // T if n > T else 0
    x = np.zeros((B, T), dtype=np.int64)
    y = np.zeros((B, T), dtype=np.int64)
    rows = 0
    for b in range(B):
        w = k * B + b
        if w < windows:
            x[b] = s[w * T:w * T + T]
            y[b] = s[w * T + 1:w * T + T + 1]
            rows += 1
    return x, y, rows


def val_windows(text, B, T, max_rows=0):
    """The validation windows in batches of B, as lm_eval (seeds/lm.c) walks
    them: yields (x, y, n) with n the rows of the batch to evaluate; stops
    after max_rows rows when max_rows > 0."""
    rows, k = 0, 0
    while True:
        x, y, n = window_batch(text, 1, k, B, T)
        if n == 0:
            return
        if max_rows:
            n = min(n, max_rows - rows)
        yield x, y, n
        rows += n
        k += 1
        if max_rows and rows >= max_rows:
            return


def lm_lr(lr, min_lr, warmup, steps, s):
    """lm_lr (seeds/lm.c): step s < warmup uses lr·(s+1)/warmup, then a
    cosine from lr down to min_lr over the remaining steps."""
    if s < warmup:
        return lr * (s + 1) / warmup
    span = steps - warmup
    if span <= 0:
        return lr
    t = min((s - warmup) / span, 1.0)
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t)) / 2


def n_windows(text, split, T):
    """The number of full validation windows of context T."""
    n = len(_stream(text, split))
    return (n - 1) // T if n > T else 0


def stream_hash(ids):
    """sum over i of ids[i] * (i * 0x9e3779b97f4a7c15 + 1), mod 2^64 (as
    tests/test_text.c computes it): changes with any token or position."""
    ids = np.asarray(ids).astype(np.uint64)
    w = np.arange(len(ids), dtype=np.uint64) * np.uint64(GOLDEN) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(ids * w, dtype=np.uint64))


def dump(text, seed, B, T, out):
    """The text tests/test_text.c prints for the same arguments."""
    w = out.write
    w("vocab %d\n" % text.vocab)
    w("bytes %s\n" % " ".join(str(b) for b in text.byte_of[:text.vocab]))
    w("words %d %d tokens %d %d\n" % (text.words_train, text.words_val, text.n_train, text.n_val))
    for split in (0, 1):
        s = _stream(text, split)
        w("stream %d hash %016x head %s\n" % (split, stream_hash(s), " ".join(str(v) for v in s[:40])))
        if len(s) > T:
            for index in (0, 1, 7, 123456789):
                x, y = batch(text, split, seed, index, B, T)
                w("batch %d %d x %s y %s\n" % (split, index, " ".join(map(str, x.ravel())),
                                                " ".join(map(str, y.ravel()))))
        k = 0
        while True:
            x, y, rows = window_batch(text, split, k, B, T)
            w("window %d %d rows %d x %s y %s\n" % (split, k, rows, " ".join(map(str, x.ravel())),
                                                     " ".join(map(str, y.ravel()))))
            if rows == 0 or k >= 3:
                break
            k += 1


def main(argv):
    if len(argv) != 7 or argv[1] != "dump":
        sys.stderr.write("usage: lm_data.py dump FILE VAL_FRACTION SEED B T\n")
        return 2
    text = load(argv[2], float(argv[3]), int(argv[4]))
    dump(text, int(argv[4]), int(argv[5]), int(argv[6]), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
