"""Most frequent complaint terms in free-text comments (Chinese word segmentation with jieba)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

STOPWORDS = frozenset(
    "的 了 和 是 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 这个 那个 希望 感觉 觉得 比较 非常 有点 一些 还是 "
    "不 没 很 太 也 在 有 要 会 能 对 把 被 让 给 从 到 这 那 就是 但是 因为 所以 如果 可以 已经 还 又 再 多 少 "
    "没人 问题 建议 情况 什么 怎么 时候 现在 一下 以后 社区 小区".split()
)


def top_terms(texts: Iterable[str], limit: int = 15) -> list[tuple[str, int]]:
    """Return the ``limit`` most frequent meaningful words, counted once per comment.

    >>> top_terms(["停车难，电动车乱停", "电动车乱停乱放，电动车充电难", "垃圾清运不及时"], limit=2)
    [('电动车', 2), ('乱放', 1)]
    """
    import jieba

    jieba.setLogLevel(60)
    counts: Counter[str] = Counter()
    for text in texts:
        words = {w.strip() for w in jieba.lcut(text or "")}
        counts.update(w for w in words if len(w) >= 2 and w not in STOPWORDS and not w.isdigit() and w.isalnum())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit] if counts else []
