"""The report's words in Chinese (the default) and English.

One table, :data:`MESSAGES`: key -> (中文, English), with ``{0}``-style
placeholders filled by :func:`text`. Ticket statuses and actions use the
console's words (``monitor/web/console/i18n.js``), so a manager reads the
same 待受理 / 已结案 in both.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("舆情日报", "Public-opinion daily report"),
    "period": ("统计区间", "Period"),
    "generated": ("生成时间", "Generated"),
    "topics_filter": ("话题范围", "Topics"),
    "all_topics": ("全部", "all"),
    "zone": ("时区 UTC{0}", "UTC{0}"),
    # Key figures.
    "kpi_posts": ("帖子总量", "Posts"),
    "kpi_negative": ("负面帖子", "Negative posts"),
    "kpi_negative_share": ("负面占比", "Negative share"),
    "kpi_incidents": ("预警工单", "Alert tickets"),
    "kpi_bursts": ("声量突增", "Bursts"),
    "kpi_change": ("较上一周期 {0}", "{0} vs the previous period"),
    "kpi_no_previous": ("上一周期无数据", "no data for the previous period"),
    # Headline sentences.
    "headline_topic": (
        "负面声量最高的话题是「{0}」：{1} 条负面，占该话题的 {2}。",
        "The most negative topic is “{0}”: {1} negative posts, {2} of its posts.",
    ),
    "headline_incidents": (
        "本期共 {0} 张预警工单，其中 P1/P2 {1} 张，{2} 张仍未解决。",
        "{0} alert tickets this period, {1} of them P1/P2; {2} not resolved yet.",
    ),
    "headline_burst": (
        "最强的声量突增：「{0}」{1}，{2} 达到峰值 {3}（基线 {4}）。",
        "Strongest burst: “{0}” ({1}), peaking at {2} with {3} (baseline {4}).",
    ),
    "headline_quiet": ("本期没有预警工单。", "No alert tickets this period."),
    "headline_empty": ("本期没有帖子。", "No posts in this period."),
    # Sections.
    "sec_trend": ("声量与情感趋势", "Volume and sentiment over time"),
    "trend_note": (
        "每 {0} 一个点；虚线为声量突增的峰值时刻。",
        "One point per {0}; dashed lines mark the peaks of bursts.",
    ),
    "sec_topics": ("话题声量与情感", "Topics: volume and sentiment"),
    "sec_topic_trend": ("负面声量走势（按话题）", "Negative posts over time, by topic"),
    "sec_sources": ("来源渠道", "Sources"),
    "sec_incidents": ("预警工单与处置时效", "Alert tickets and handling times"),
    "sec_reviews": ("复盘", "Reviews"),
    "sec_posts": ("重点负面帖子", "Most influential negative posts"),
    "posts_note": (
        "按影响力排序（粉丝数与互动量的对数之和），相同内容只列一次，每条最多 {0} 字。",
        "Ranked by influence (log of followers plus log of engagement); "
        "one post per text, at most {0} characters each.",
    ),
    "sec_hot_words": ("热词", "Hot words"),
    "hot_words_note": (
        "橙色为新兴热词：占比达到上一周期的 {0} 倍以上且至少 {1} 条帖子。",
        "Orange: emerging words, whose share of posts is at least {0}× the "
        "previous period's, with at least {1} posts.",
    ),
    "hot_words_no_previous": (
        "上一周期没有帖子，无法判断新兴热词。",
        "The previous period has no posts: no emerging words can be told.",
    ),
    "sec_bursts": ("声量突增", "Bursts"),
    "none": ("无", "None"),
    "no_posts": ("本期没有负面帖子。", "No negative posts this period."),
    "no_incidents": ("本期没有预警工单。", "No alert tickets this period."),
    "no_reviews": (
        "本期工单暂无复盘记录。",
        "No reviews for this period's tickets yet.",
    ),
    "no_bursts": ("本期没有检测到声量突增。", "No bursts detected this period."),
    # Column and series names.
    "topic": ("话题", "Topic"),
    "source": ("来源", "Source"),
    "posts": ("帖子", "Posts"),
    "positive": ("正面", "Positive"),
    "neutral": ("中性", "Neutral"),
    "negative": ("负面", "Negative"),
    "negative_share": ("负面占比", "Negative share"),
    "all_posts": ("全部帖子", "All posts"),
    "word": ("热词", "Word"),
    "previous": ("上一周期", "Previous period"),
    "emerging": ("新兴", "Emerging"),
    "yes": ("是", "yes"),
    "series": ("序列", "Series"),
    "kind": ("类型", "Kind"),
    "started": ("开始", "Started"),
    "peak": ("峰值时刻", "Peak"),
    "ended": ("结束", "Ended"),
    "ongoing": ("持续中", "ongoing"),
    "observed_expected": ("峰值/基线", "Peak / baseline"),
    "score": ("强度", "Score"),
    "ticket": ("工单", "Ticket"),
    "priority": ("优先级", "Priority"),
    "status": ("状态", "Status"),
    "rule": ("规则", "Rule"),
    "owner": ("负责人", "Owner"),
    "first_seen": ("首次触发", "First seen"),
    "signals": ("信号", "Signals"),
    "to_ack": ("受理用时", "Time to acknowledge"),
    "to_resolve": ("解决用时", "Time to resolve"),
    "late": ("超时", "late"),
    "metric": ("指标", "Measure"),
    "count": ("工单数", "Tickets"),
    "median": ("中位数", "Median"),
    "p90": ("P90", "P90"),
    "maximum": ("最长", "Longest"),
    "stats_note": (
        "处置时效从开单（或重新打开）算起，在本报告中对读取的工单逐张计算。",
        "Handling times run from opening (or reopening) and are computed in "
        "this report over the tickets read.",
    ),
    "root_cause": ("根因", "Root cause"),
    "resolution": ("处置措施", "Resolution"),
    "lessons": ("经验教训", "Lessons"),
    "review_by": ("{0} · {1}", "{0} · {1}"),
    "author": ("作者", "Author"),
    "followers": ("粉丝", "Followers"),
    "likes": ("点赞", "Likes"),
    "reposts": ("转发", "Reposts"),
    "published": ("发布时间", "Published"),
    "text": ("内容", "Text"),
    "original": ("原文", "original"),
    # Footnotes (caps that applied).
    "notes": ("说明", "Notes"),
    "note_source": (
        "数据来自 Elasticsearch 索引 {0}；声量按帖子发布时间统计。",
        "Figures come from the Elasticsearch indices {0}; volume counts posts by "
        "their publication time.",
    ),
    "cap_topics": (
        "话题只列出前 {0} 个，其余 {1} 次话题命中未列出。",
        "Only the top {0} topics are listed; {1} more topic matches are not.",
    ),
    "cap_sources": (
        "来源只列出前 {0} 个，其余 {1} 条帖子未列出。",
        "Only the top {0} sources are listed; {1} more posts are not.",
    ),
    "cap_incidents": (
        "工单只读取了 {0} 张（共 {1} 张），处置时效按这些工单计算。",
        "Only {0} of {1} tickets were read; handling times cover those.",
    ),
    # Vocabularies.
    "status_open": ("待受理", "Open"),
    "status_acknowledged": ("已受理", "Acknowledged"),
    "status_in_progress": ("处理中", "In progress"),
    "status_resolved": ("已解决", "Resolved"),
    "status_closed": ("已结案", "Closed"),
    "kind_topic": ("话题声量", "topic volume"),
    "kind_negative": ("负面声量", "negative volume"),
    "kind_keyword": ("关键词", "keyword"),
    "minutes": ("{0} 分钟", "{0} minutes"),
    "hours": ("{0} 小时", "{0} hours"),
    "days": ("{0} 天", "{0} days"),
}

#: Display names of the sources the product knows (others show as indexed).
SOURCE_NAMES: dict[str, tuple[str, str]] = {
    "weibo": ("微博", "Weibo"),
    "dianping": ("大众点评", "Dianping"),
    "xiaohongshu": ("小红书", "Xiaohongshu"),
    "douyin": ("抖音", "Douyin"),
    "heimao": ("黑猫投诉", "Heimao complaints"),
    "unknown": ("未知来源", "unknown"),
}


def source_name(lang: str, source: str) -> str:
    """Return a source's display name in ``lang`` (unknown names unchanged)."""
    pair = SOURCE_NAMES.get(source)
    return source if pair is None else pair[LANGUAGES.index(lang)]


def text(lang: str, key: str, *values: object) -> str:
    """Return the message ``key`` in ``lang`` with ``values`` filled in.

    Args:
        lang: ``zh`` or ``en``.
        key: A key of :data:`MESSAGES`; an unknown one is returned as it is.
        *values: The message's ``{0}``, ``{1}``... (plain text: the caller
            escapes the result).

    Raises:
        ValueError: If ``lang`` is not one of :data:`LANGUAGES`.

    """
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    message = pair[LANGUAGES.index(lang)]
    return message.format(*values) if values else message
