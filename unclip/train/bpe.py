"""CLIP byte-level BPE: learn a merges file from captions and encode text with it.

The merges file has the format of CLIP's ``bpe_simple_vocab_16e6.txt`` (one header line, then one
merge ``a b`` per line), gzipped. The vocabulary is, in order: the 256 byte symbols, the same with
``</w>``, one entry per merge, ``<|startoftext|>``, ``<|endoftext|>`` (docs/bundle.md).

The pre-tokenisation follows CLIP's pattern
``'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``; Python's ``re`` has no ``\\p{..}``
classes, so letters are ``[^\\W\\d_]`` and numbers ``\\d`` (identical on ASCII text, which is what the
captions are).
"""
import collections
import gzip
import html
import re

HEADER = "#version: 0.2 - learned by augment unclip/train/bpe.py"
PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
                 re.IGNORECASE)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENC = bytes_to_unicode()


def clean(text):
    text = html.unescape(html.unescape(text))
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower()


def pretokens(text):
    """Pieces of cleaned text, each mapped to the byte-to-unicode alphabet."""
    return ["".join(BYTE_ENC[b] for b in t.encode("utf-8")) for t in PAT.findall(clean(text))]


def learn(texts, num_merges, min_count=2):
    """Learn up to num_merges merges (pairs) from texts; ties broken by the pair's order."""
    words = collections.Counter()
    for t in texts:
        for p in pretokens(t):
            words[tuple(p[:-1]) + (p[-1] + "</w>",)] += 1
    words = {w: c for w, c in words.items()}
    merges = []
    while len(merges) < num_merges:
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best_count = max(pairs.values())
        if best_count < min_count:
            break
        best = min(p for p, c in pairs.items() if c == best_count)
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def write_merges(path, merges):
    data = "\n".join([HEADER] + [f"{a} {b}" for a, b in merges]) + "\n"
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(data.encode("utf-8"))


def read_merges(path, num_merges=None):
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    merges = [tuple(l.split()) for l in lines if l.strip()]
    return merges[:num_merges] if num_merges else merges


class Tokenizer:
    """CLIP BPE tokenizer over a merges list (same ids as the Go runtime)."""

    def __init__(self, merges, context_length):
        self.context_length = context_length
        vocab = list(BYTE_ENC.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]
        self.vocab_size = len(vocab)
        self.cache = {}

    @classmethod
    def from_file(cls, path, context_length, num_merges=None):
        return cls(read_merges(path, num_merges), context_length)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for p in pretokens(text):
            ids.extend(self.encoder[s] for s in self.bpe(p))
        return ids

    def tokens(self, text):
        """[sot] + ids + [eot], truncated to the context (end token kept last), zero padded."""
        ids = [self.sot] + self.encode(text)[: self.context_length - 2] + [self.eot]
        return ids + [0] * (self.context_length - len(ids))
