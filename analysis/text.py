"""Most frequent complaint terms in free-text comments (Chinese word segmentation with jieba).

jieba's general dictionary splits civic complaints into fragments ("没人修" -> "没人" + "修",
"几盏路灯" -> "几盏" + "路" + "灯"). A small domain dictionary (``complaint_terms.txt``) keeps
the usual complaint terms whole, a negation stays with the word it negates ("不" + "及时" ->
"不及时"), and single characters, numbers and measure-word fragments ("几盏", "一个") are dropped.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from threading import Lock

TERMS_FILE = Path(__file__).with_name("complaint_terms.txt")
TERM_FREQUENCY = 20_000  # high enough that a listed term wins over the pieces jieba would cut it into

STOPWORDS = frozenset(
    "的 了 和 是 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 这个 那个 希望 感觉 觉得 比较 非常 有点 一些 还是 "
    "不 没 很 太 也 在 有 要 会 能 对 把 被 让 给 从 到 这 那 就是 但是 因为 所以 如果 可以 已经 还 又 再 多 少 "
    "没人 问题 建议 情况 什么 怎么 时候 现在 一下 以后 社区 小区 经常 总是 一直 好久 严重 有些 特别 "
    # verbs of direction and other function words that say nothing of the problem (出来, 出门 came top)
    "出来 出去 出门 起来 下来 上来 过来 回来 进去 一样 这样 那样 这里 那里 哪里 大家 自己 其实 然后 而且 "
    "虽然 只是 真的 比如 东西 地方 感到 看到 知道 需要 应该".split()
)
# Words that negate the next one; the pair is counted as one term ("没有" + "路灯" -> "没有路灯").
NEGATIONS = frozenset("不 没 没有 未 无 不太 不够 不再".split())
# Pieces that are not terms: numeral + measure word ("几盏", "两个"), and leftovers of split phrases.
MEASURE = re.compile(r"^[几一二两三四五六七八九十百千万半多每某数整各]+[个盏只条辆次回趟遍天年月日周块家位名根处栋座幢间把张台件些层户号点段片]$")
FRAGMENTS = frozenset("人修 人管 人来 人扫 灯坏 来修 修好 坏了 好几".split())
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_HAS_HAN = re.compile(r"[\u4e00-\u9fff]")
_lock = Lock()


def domain_terms(path: Path = TERMS_FILE) -> list[tuple[str, int]]:
    """Return the (term, frequency) pairs of a dictionary file: one term a line, ``#`` starts a comment."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            word, *rest = line.split()
            out.append((word, int(rest[0]) if rest else TERM_FREQUENCY))
    return out


@lru_cache(maxsize=1)
def _tokenizer():
    """Return a jieba tokenizer with the domain dictionary (built once; jieba's default one is left alone)."""
    import jieba

    jieba.setLogLevel(60)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for word, frequency in domain_terms():
            tokenizer.add_word(word, frequency)
    return tokenizer


def load_dictionary() -> None:
    """Load jieba's dictionaries now (about a second), so the first comment is not the one that waits."""
    _tokenizer()


def segment(text: str) -> list[str]:
    """Return the words of ``text``, with each negation joined to the word after it.

    >>> segment("垃圾清运不及时，路灯坏了没人修")
    ['垃圾清运', '不及时', '，', '路灯', '坏', '了', '没人修']
    """
    words = [w.strip() for w in _tokenizer().lcut(text or "")]
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1] if index + 1 < len(words) else ""
        if word in NEGATIONS and following not in NEGATIONS and following not in STOPWORDS and _HAN.match(following):
            out.append(word + following)
            index += 2
            continue
        out.append(word)
        index += 1
    return [w for w in out if w]


def is_term(word: str) -> bool:
    """Return whether a segmented word is worth counting: Chinese, no single characters, numbers or fragments.

    Latin-only words are left out: in residents' comments they are pasted markup or code
    ("script", "onerror"), not complaint terms.

    >>> [w for w in ["路灯", "script", "WiFi信号", "12", "几盏"] if is_term(w)]
    ['路灯', 'WiFi信号']
    """
    return (
        len(word) >= 2 and word.isalnum() and not word.isdigit() and word not in STOPWORDS
        and word not in FRAGMENTS and not MEASURE.match(word) and _HAS_HAN.search(word) is not None
    )


def top_terms(texts: Iterable[str], limit: int = 15) -> list[tuple[str, int]]:
    """Return the ``limit`` most frequent meaningful words, counted once per comment.

    >>> top_terms(["停车难，电动车乱停", "电动车乱停乱放，电动车充电难", "垃圾清运不及时"], limit=3)
    [('电动车', 2), ('不及时', 1), ('乱停', 1)]
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w for w in segment(text) if is_term(w)})
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit] if counts else []
