#!/usr/bin/env python3
"""Seeded generator of the demo sample feed ``samples/feed.jsonl``.

The feed is six hours (2026-11-20 09:00-15:00 +08:00) of synthetic Chinese
social-media posts about a fictional retail brand: the shopping mall 星河广场,
its restaurants, parking, cinema (星河影城), customer service, delivery
service (星河到家) and membership app (星河生活App), plus generic chatter.
Every text is built from this file's own templates and phrase fragments; no
sentiment corpus was copied.

Two events are planted for the later pipeline stages to find:

* **The incident** -- complaints that the air conditioning at 星河广场 smells
  (空调异味, 霉味, 怪味, 通风差, 头晕 ...). None before 13:00; the rate rises from
  13:00 to a plateau of about 20 posts/minute from 13:30 to 13:50, then
  decays (half-life 8 minutes) and stops at 14:30. Three "repeat
  complainers" post three or four negative incident posts each within 40
  minutes; influential accounts (10^5+ followers) post and get reposted.
* **A positive event** -- a 双十一返场 / 星河会员日 promotion praised between
  10:30 and 11:00 (extra rate peaking at about 7 posts/minute at 10:45), which
  a detector of *negative* bursts must not fire on.

Run ``python samples/generate_feed.py`` to rewrite ``samples/feed.jsonl``; the
ground-truth statistics quoted in ``samples/README.md`` are printed to stderr.
The script uses the standard library only and is deterministic for a given
``--seed`` (one :class:`random.Random` instance drives everything).
"""

# The phrase material is Chinese text (double-width characters): long lines are data.
# ruff: noqa: E501

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path
from random import Random
from urllib.parse import quote

# ---------------------------------------------------------------------------
# Timeline (all "minutes" count from DAY_START)
# ---------------------------------------------------------------------------

#: Seed of the committed feed.
SEED = 20261120
#: China Standard Time; every ``published_at`` carries this offset.
TZ = timezone(timedelta(hours=8))
#: Start of the feed window.
DAY_START = datetime(2026, 11, 20, 9, 0, 0, tzinfo=TZ)
#: Length of the feed window in minutes (09:00-15:00).
DURATION_MIN = 360

#: Background rate (posts/minute) at knots of a piecewise-linear daytime curve.
BACKGROUND_KNOTS: tuple[tuple[float, float], ...] = (
    (0, 9.0),  # 09:00
    (60, 12.0),  # 10:00
    (120, 14.0),  # 11:00
    (180, 16.5),  # 12:00
    (210, 17.5),  # 12:30 lunch peak
    (240, 15.0),  # 13:00
    (300, 13.0),  # 14:00
    (360, 13.5),  # 15:00
)

#: Incident onset (13:00): no incident post before this minute.
INCIDENT_ONSET_MIN = 240
#: End of the quadratic ramp, start of the plateau (13:30).
INCIDENT_PEAK_MIN = 270
#: End of the plateau, start of the exponential decay (13:50).
INCIDENT_PLATEAU_END_MIN = 290
#: Incident end (14:30): no incident post from this minute on.
INCIDENT_END_MIN = 330
#: Expected incident posts per minute on the plateau.
INCIDENT_PEAK_RATE = 18.0
#: Half-life of the decay after the plateau, in minutes.
INCIDENT_HALF_LIFE_MIN = 8.0

#: Positive promotion event: 10:30-11:00, triangular, peak at 10:45.
EVENT_START_MIN = 90
EVENT_PEAK_MIN = 105
EVENT_END_MIN = 120
#: Extra positive posts per minute at the event peak.
EVENT_PEAK_RATE = 7.0

#: The watched-topic keywords of the incident (see samples/topics.yaml).
INCIDENT_KEYWORDS = ("空调", "异味", "霉味", "怪味", "通风")

# ---------------------------------------------------------------------------
# Sources and mixes
# ---------------------------------------------------------------------------

SOURCES = ("weibo", "dianping", "xiaohongshu", "douyin", "heimao")
ID_PREFIX = {
    "weibo": "wb",
    "dianping": "dp",
    "xiaohongshu": "xhs",
    "douyin": "dy",
    "heimao": "hm",
}
#: Share of each source in the background and during the incident.
BACKGROUND_SOURCE_SHARE = {
    "weibo": 0.40,
    "dianping": 0.18,
    "xiaohongshu": 0.16,
    "douyin": 0.19,
    "heimao": 0.07,
}
INCIDENT_SOURCE_SHARE = {
    "weibo": 0.42,
    "dianping": 0.10,
    "xiaohongshu": 0.16,
    "douyin": 0.16,
    "heimao": 0.16,
}
EVENT_SOURCE_SHARE = {
    "weibo": 0.45,
    "dianping": 0.10,
    "xiaohongshu": 0.25,
    "douyin": 0.20,
}
#: (positive, neutral, negative) per source in calm hours; the weighted mix
#: is about 45 % / 29 % / 26 %.
SENTIMENT_MIX = {
    "weibo": (0.44, 0.34, 0.22),
    "dianping": (0.55, 0.18, 0.27),
    "xiaohongshu": (0.58, 0.27, 0.15),
    "douyin": (0.46, 0.36, 0.18),
    "heimao": (0.0, 0.06, 0.94),
}
SENTIMENTS = ("pos", "neu", "neg")
#: What background posts talk about, per source.
ASPECT_MIX = {
    "weibo": {
        "mall": 0.22,
        "restaurant": 0.14,
        "parking": 0.10,
        "cinema": 0.08,
        "service": 0.08,
        "delivery": 0.08,
        "app": 0.10,
        "generic": 0.20,
    },
    "dianping": {
        "restaurant": 0.60,
        "cinema": 0.12,
        "mall": 0.15,
        "parking": 0.08,
        "service": 0.05,
    },
    "xiaohongshu": {
        "mall": 0.28,
        "restaurant": 0.30,
        "cinema": 0.10,
        "app": 0.07,
        "parking": 0.07,
        "generic": 0.18,
    },
    "douyin": {
        "mall": 0.25,
        "restaurant": 0.25,
        "generic": 0.25,
        "cinema": 0.10,
        "parking": 0.08,
        "delivery": 0.07,
    },
    "heimao": {
        "service": 0.25,
        "delivery": 0.25,
        "app": 0.25,
        "parking": 0.12,
        "restaurant": 0.08,
        "mall": 0.05,
    },
}

# ---------------------------------------------------------------------------
# Phrase material (all written for this feed)
# ---------------------------------------------------------------------------

#: Fictional restaurants of the mall with a few dishes each.
RESTAURANT_DISHES: dict[str, tuple[str, ...]] = {
    "蜀香阁火锅": ("毛肚", "番茄锅底", "鸭血", "手切牛肉", "红糖糍粑"),
    "阿婆手工面馆": ("牛肉面", "葱油拌面", "鲜肉小笼", "大排面"),
    "渔湾小馆": ("酸菜鱼", "蟹黄豆腐", "椒盐皮皮虾", "清蒸鲈鱼"),
    "麦田烘焙": ("抹茶千层", "可颂", "芝士蛋糕", "肉松小贝"),
    "拾味小厨": ("椒麻鸡", "虾仁炒饭", "小炒黄牛肉", "干锅花菜"),
    "一口茶事": ("杨枝甘露", "芝士奶盖", "柠檬茶", "桂花乌龙"),
    "炭火小院烤肉": ("烤五花", "黑椒牛仔骨", "烤牛舌", "石锅拌饭"),
    "椰林糖水铺": ("芒果班戟", "双皮奶", "椰汁西米露", "芋圆烧仙草"),
    "山野云南菜": ("菌菇汤", "汽锅鸡", "过桥米线", "鲜花饼"),
    "小满寿司": ("三文鱼刺身", "鳗鱼饭", "寿司拼盘", "天妇罗"),
    "老街砂锅粥": ("砂锅粥", "虾蟹粥", "肠粉", "萝卜糕"),
    "青禾轻食": ("牛油果沙拉", "鸡胸肉卷", "藜麦碗", "鲜榨果汁"),
}
RESTAURANTS = tuple(RESTAURANT_DISHES)
FLOORS = ("一楼", "二楼", "三楼", "四楼", "五楼", "B1", "负一楼")
STORES = (
    "童装店",
    "美妆集合店",
    "运动品牌店",
    "家居生活馆",
    "书店",
    "数码体验店",
    "超市",
    "文具店",
    "花店",
    "眼镜店",
    "潮玩店",
    "宠物用品店",
)
MOVIES = (
    "《长夜将明》",
    "《星海迷航》",
    "《小城故事多》",
    "《追风少年》",
    "《海底奇遇记》",
    "《回到十八岁》",
)
HALLS = ("IMAX厅", "4K激光厅", "杜比厅", "3号厅", "情侣座", "VIP厅")
APPS = ("星河生活App", "星河App", "星河会员小程序", "星河生活APP")
PHONES = ("iPhone 15", "iPhone 15 Pro", "iPhone 13", "安卓手机", "新买的手机", "平板")
FRIENDS = (
    "闺蜜",
    "男朋友",
    "女朋友",
    "老公",
    "老婆",
    "同事",
    "爸妈",
    "孩子",
    "室友",
    "老同学",
    "表妹",
    "邻居",
)
MINUTES = (
    "十分钟",
    "十五分钟",
    "二十分钟",
    "半小时",
    "四十分钟",
    "快一个小时",
    "一个多小时",
    "25分钟",
    "40分钟",
)
HOURS = ("两个小时", "一个下午", "三个多小时", "一个半小时", "整整一上午")

OPENERS = {
    "pos": (
        "",
        "",
        "",
        "今天",
        "必须夸一下，",
        "说真的，",
        "好开心，",
        "周五快乐！",
        "惊喜！",
        "被治愈了，",
        "意外之喜：",
        "分享一下，",
    ),
    "neg": (
        "",
        "",
        "",
        "吐槽一下，",
        "无语了，",
        "服了，",
        "真的会谢，",
        "气死了！",
        "避雷：",
        "心累，",
        "离谱，",
        "忍不住说一句，",
    ),
    "neu": (
        "",
        "",
        "",
        "问一下，",
        "求助：",
        "记录：",
        "话说",
        "有没有人知道，",
        "小问题：",
        "顺便说下，",
    ),
}
CLOSERS = {
    "pos": (
        "下次还来",
        "推荐给大家",
        "好评",
        "很满意",
        "爱了爱了",
        "五星好评",
        "幸福感满满",
        "会回购的",
        "必须安利",
        "开心",
    ),
    "neg": (
        "再也不来了",
        "差评",
        "希望改进",
        "太失望了",
        "谁来管管",
        "心累",
        "不推荐",
        "浪费时间",
        "服气",
        "真的够了",
    ),
    "neu": ("", "蹲一个答案", "谢谢大家", "先记下来", "mark", "有懂的吗", "在线等"),
}
WEIBO_EMOJI = {
    "pos": (
        "[哈哈]",
        "[赞]",
        "[心]",
        "[太开心]",
        "[鼓掌]",
        "😄",
        "👍",
        "❤️",
        "✨",
        "🥰",
        "[good]",
        "🎉",
    ),
    "neg": (
        "[怒]",
        "[泪]",
        "[抓狂]",
        "[衰]",
        "[白眼]",
        "😡",
        "😤",
        "🙄",
        "💢",
        "😭",
        "[微笑]",
        "👎",
    ),
    "neu": ("[doge]", "[思考]", "[吃瓜]", "🤔", "👀", "[允悲]", "[并不简单]", ""),
}
XHS_EMOJI = {
    "pos": ("✨", "💕", "🥰", "😋", "👍🏻", "🌟", "💯", "🍰", "📸", "🎀"),
    "neg": ("😤", "🙄", "💢", "😭", "👎🏻", "‼️", "🤯", "😩"),
    "neu": ("🙋‍♀️", "📍", "🤔", "📝", "👀", "💭"),
}
HASHTAGS = {
    "mall": ("星河广场", "周末去哪儿", "逛街", "城东生活"),
    "restaurant": ("星河广场美食", "探店", "城东美食", "今天吃什么"),
    "parking": ("停车难", "星河广场", "开车出行"),
    "cinema": ("星河影城", "周末看电影", "观影"),
    "service": ("星河广场", "消费维权"),
    "delivery": ("星河到家", "外卖日常"),
    "app": ("星河生活App", "数字生活"),
    "generic": ("周五", "打工人日常", "今日份心情", "城东天气"),
}
#: Watched topic a post's declared ``topic`` may name, per aspect (rarely set).
ASPECT_TOPIC = {
    "mall": "星河广场",
    "restaurant": "餐饮",
    "parking": "停车",
    "cinema": "影城",
    "service": "客服",
    "delivery": "配送",
}

#: Core clauses per aspect and sentiment. ``{slot}`` placeholders are filled
#: by :meth:`TextFactory.fill`; no background clause may contain an incident
#: keyword (checked at run time).
CORES: dict[str, dict[str, tuple[str, ...]]] = {
    "mall": {
        "pos": (
            "{mall}今天人不多，逛得很舒服",
            "{mall}{floor}新开的{store}好逛，店员也热情",
            "{mall}的圣诞装饰已经挂上了，中庭那棵大树超好看",
            "在{mall}逛了{hours}，腿走酸了但是好开心",
            "{mall}的卫生间真干净，还有母婴室，带娃很友好",
            "带{friend}来{mall}，吃喝玩乐一站式搞定",
            "{mall}中庭在搞手作市集，摊位都好有意思",
            "{mall}的休息区沙发很多，逛累了随时能坐",
            "{mall}{floor}的{store}在打折，淘到好几件宝贝",
            "周五下午的{mall}很安静，适合一个人慢慢逛",
            "{mall}的灯光好有氛围感，随手一拍都出片",
            "{mall}重新装修之后高级了不少",
            "{mall}有免费充电宝和WiFi，太贴心了",
            "{mall}的导视牌做得很清楚，第一次来也不迷路",
            "下小雨躲进{mall}，里面暖暖的很舒服",
            "{mall}{floor}的{store}店员帮我找了半天尺码，服务真好",
            "{mall}的儿童乐园干净又安全，孩子玩疯了",
            "{mall}新增的露台花园好美，晒着太阳喝咖啡",
        ),
        "neg": (
            "{mall}人挤人，根本逛不动",
            "{mall}{floor}的扶梯又停了，只能爬楼梯",
            "{mall}的卫生间排队排了{mins}，就不能多修几个吗",
            "{mall}{floor}的{store}导购一直跟着推销，烦死了",
            "{mall}的指示牌乱七八糟，找个出口绕了半天",
            "{mall}里的东西比网上贵一大截",
            "在{mall}等直梯等了{mins}都没等到",
            "{mall}中庭活动的音响声音太大，吵得人心烦",
            "{mall}的休息区全被占了，想坐一下都没地方",
            "在{mall}买的衣服第二天就开线了，去退还要看脸色",
            "{mall}的保洁不太到位，{floor}地上全是饮料渍",
            "{mall}的WiFi连不上，手机信号也差，5G直接变成E",
            "{mall}{floor}的{store}关门了也不贴个通知，白跑一趟",
            "{mall}的儿童乐园收费又涨了，一小时{fee}块",
            "{mall}的保安态度好凶，问个路像欠他钱一样",
        ),
        "neu": (
            "{mall}几点关门？",
            "{mall}{floor}是不是新开了一家{store}？",
            "有人知道{mall}今天有什么活动吗？",
            "在{mall}等{friend}，先随便逛逛",
            "{mall}的{store}搬到{floor}了，别走错",
            "{mall}附近的地铁站是哪一站？",
            "下午去{mall}取个东西",
            "{mall}{floor}在围挡施工，不知道要开什么店",
            "{mall}的营业时间是早上十点到晚上十点吗？",
            "今天在{mall}花了{money}元，记个账",
            "{mall}可以带宠物进去吗？",
            "{mall}的寄存柜在哪一层？",
            "{mall}和旁边的写字楼是连通的吗？",
        ),
    },
    "restaurant": {
        "pos": (
            "{rest}的{dish}绝了，{dish2}也很有水准",
            "{rest}上菜速度很快，服务员态度也好",
            "{rest}人均{price}，这个价位性价比很高",
            "{rest}的{dish}分量足、味道正，吃撑了",
            "又来{rest}打卡了，{dish}还是熟悉的味道",
            "{rest}环境干净，座位宽敞，适合聚餐",
            "{rest}的服务员会主动加水换碟，很周到",
            "带{friend}来吃{rest}，都说好吃",
            "{rest}新出的{dish}必点，强烈推荐",
            "{rest}排了{mins}的队，吃到{dish}的那一刻觉得值了",
            "{rest}的{dish2}颜值和味道都在线",
            "{rest}给小朋友准备了儿童椅和小碗，好贴心",
            "{rest}的老板人很好，还送了一份{dish2}",
            "{rest}的{dish}是现做的，热乎乎端上来很香",
        ),
        "neg": (
            "{rest}的{dish}咸得发苦，喝了一壶水",
            "{rest}上菜太慢了，等了{mins}才上第一道",
            "{rest}的服务员爱答不理，叫了三次都没人来",
            "{rest}的{dish}分量少得可怜，人均{price}还吃不饱",
            "{rest}的桌子油乎乎的，餐具上还有水渍",
            "{rest}结账多收了钱，问了半天才退",
            "{rest}的{dish}是凉的，明显是提前做好的",
            "在{rest}吃出了一根头发，店员只说了句不好意思",
            "{rest}取号说二十分钟，结果等了{mins}",
            "{rest}越来越难吃了，{dish}的味道完全变了",
            "{rest}的团购券到店说不能用，坑人",
            "{rest}的{dish}端上来就少了一半，问了说本来就这么多",
            "{rest}催了{n}次菜，服务员一直说马上",
        ),
        "neu": (
            "{rest}中午要排队吗？",
            "{rest}的{dish}和{dish2}哪个更好吃？",
            "今天午饭在{rest}解决，点了{dish}",
            "{rest}现在可以线上取号吗？",
            "{rest}是在{mall}{floor}吗？",
            "有人吃过{rest}的{dish}吗？求推荐",
            "{rest}几点开始营业？",
            "{rest}的套餐最近换了菜单",
            "{rest}能不能订包间？{n}个人",
            "{rest}的{dish}一份大概多少钱？",
        ),
    },
    "parking": {
        "pos": (
            "{mall}停车场车位挺多，进去就找到了",
            "{mall}停车扫码缴费很方便，出场不用排队",
            "{mall}消费满{money2}可以免费停车两小时，挺良心",
            "{mall}B2有充电桩，边逛边充太方便了",
            "{mall}停车场有车位引导灯，绿灯就是空位，好找",
            "{mall}停车场干净明亮，不像别的地下车库那么阴森",
            "{mall}停车场的保安大哥帮我指挥倒车，太热心了",
            "用会员积分抵了{mall}的停车费，省心",
        ),
        "neg": (
            "{mall}停车场出口排了{mins}，一动不动",
            "{mall}停车费一小时{fee}块，抢钱呢",
            "在{mall}停车场转了三圈都找不到车位",
            "{mall}停车场的缴费码扫不出来，后面一排车在按喇叭",
            "{mall}B2的车位太窄了，开车门都费劲",
            "{mall}停车场指示混乱，找不到自己的车停在哪",
            "{mall}的停车优惠券在App里领了却用不了",
            "{mall}停车场入口又堵了，排队排到马路上",
        ),
        "neu": (
            "{mall}停车怎么收费？",
            "{mall}停车场晚上几点关？",
            "{mall}有没有充电桩车位？",
            "{mall}停车场入口在哪条路上？",
            "在{mall}看电影可以减免停车费吗？",
            "{mall}停车场B1和B2哪个车位多？",
        ),
    },
    "cinema": {
        "pos": (
            "{cinema}的{hall}音效震撼，{movie}值得二刷",
            "在{cinema}看了{movie}，座椅舒服，视野也好",
            "{cinema}的爆米花今天买一送一，开心",
            "{cinema}工作日下午场人很少，像包场一样",
            "{movie}太好哭了，{cinema}{hall}的效果满分",
            "{cinema}的检票小哥很有礼貌，还提醒我们带好东西",
            "{cinema}新换的座椅可以躺，看电影太享受了",
        ),
        "neg": (
            "{cinema}{hall}前排有人一直玩手机，也没人管",
            "{cinema}放映中途黑屏了{n}分钟，体验极差",
            "{cinema}的座椅扶手是坏的，坐了两小时难受死了",
            "{cinema}的票价比别家贵了{fee}块",
            "{cinema}检票口只开了一个，排了{mins}",
            "{movie}看得我想睡觉，浪费钱",
            "{cinema}的爆米花又小又贵",
            "{cinema}{hall}的画面有点糊，不像宣传的那样",
        ),
        "neu": (
            "{cinema}今晚{movie}还有票吗？",
            "{cinema}的{hall}和普通厅差别大吗？",
            "下午在{cinema}看{movie}，有人一起吗？",
            "{cinema}可以用会员积分兑换电影票吗？",
            "{cinema}几点有{movie}的场次？",
            "{movie}在{cinema}排片多吗？",
        ),
    },
    "service": {
        "pos": (
            "{mall}服务台的小姐姐超耐心，帮我找回了丢的钱包",
            "{mall}客服处理退款很快，当天就到账了",
            "打{mall}客服热线，五分钟就有人回复，点赞",
            "在{mall}丢了孩子的玩具，保安帮忙调了监控找到了",
            "{mall}的退换货流程很顺，一点没为难人",
            "{mall}服务台免费借了我一把伞，好暖心",
        ),
        "neg": (
            "{mall}客服电话打了{n}次都没人接",
            "在线客服永远是机器人，转人工排队{mins}",
            "{mall}服务台的人态度恶劣，问个问题爱答不理",
            "申请退款{n}天了还没到账，客服只会说在处理",
            "{mall}客服让我等通知，等了一周没下文",
            "{mall}客服把我的问题转来转去，没有一个人负责",
            "{mall}会员卡余额被扣了{money}元，客服说查不到记录",
        ),
        "neu": (
            "{mall}客服电话是多少？",
            "{mall}服务台在几楼？",
            "请问{mall}可以开发票吗？",
            "{mall}退换货需要带小票吗？",
            "{mall}的会员卡可以转给家人用吗？",
        ),
    },
    "delivery": {
        "pos": (
            "星河到家配送好快，下单{mins}就送到了",
            "星河到家的骑手小哥冒雨送来，还提醒我趁热吃",
            "星河到家买的水果很新鲜，包装也用心",
            "星河到家准时送达，生鲜都是冰的",
            "星河到家的骑手帮我把米扛上了六楼，感动",
        ),
        "neg": (
            "星河到家配送超时一个多小时，饭都凉了",
            "星河到家送来的鸡蛋碎了{n}个",
            "星河到家骑手没打电话就把东西放门口，结果丢了",
            "星河到家少送了一样东西，客服推来推去",
            "星河到家显示已送达，我根本没收到",
            "星河到家的配送费又涨了，{fee}块起送",
            "星河到家的骑手态度很差，还让我自己下楼拿",
        ),
        "neu": (
            "星河到家配送范围到哪？",
            "星河到家今天还能约晚上的配送吗？",
            "星河到家和外卖平台比哪个快？",
            "星河到家下单后能改地址吗？",
        ),
    },
    "app": {
        "pos": (
            "{app}改版后好用多了，积分查得很清楚",
            "用{app}扫码点餐，不用排队太方便",
            "{app}的会员积分能抵停车费，省了好几块",
            "{app}在{phone}上运行很流畅",
            "{app}签到送的积分换了一杯奶茶，开心",
            "{app}的电子发票一键就开好了，效率很高",
        ),
        "neg": (
            "{app}又闪退了，{phone}更新后就打不开",
            "{app}登录一直转圈，5G信号满格也没用",
            "{app}积分莫名其妙少了{points}",
            "{app}的优惠券领了用不了，说不在活动范围",
            "{app}广告弹窗太多了，关都关不掉",
            "{app}绑定会员卡失败了{n}次",
            "{app}支付成功了订单还显示未付款",
            "{app}的验证码一直收不到",
        ),
        "neu": (
            "{app}在哪里看积分？",
            "{app}能绑两张会员卡吗？",
            "{app}的电子会员码在哪？",
            "{app}最近是不是更新了？",
            "{app}支持{phone}吗？",
        ),
    },
    "generic": {
        "pos": (
            "周五了！下班去吃顿好的",
            "今天阳光真好，心情也跟着好起来",
            "午饭吃了一碗热汤面，整个人都活过来了",
            "新买的{phone}拍照真清楚",
            "公司楼下新开的咖啡店好喝",
            "今天的工作提前完成，摸鱼快乐",
            "明天终于可以睡懒觉了",
            "同事分了我一块蛋糕，幸福",
            "路边的银杏全黄了，好美",
        ),
        "neg": (
            "地铁又挤又慢，迟到了",
            "降温了，出门冻得发抖",
            "开了一上午的会，脑子都是懵的",
            "外卖又洒了，心态崩了",
            "{phone}电池一天三充，后悔买了",
            "周五还要加班，太难了",
            "楼上装修从早上吵到现在",
            "打印机又卡纸了，今天诸事不顺",
        ),
        "neu": (
            "午饭吃什么？",
            "今天降温，大家多穿点",
            "下午三点的会改到四点了",
            "周末有什么好去处推荐吗？",
            "11月20号了，离年底又近了",
            "在地铁上刷手机",
            "今天的快递到了没",
            "喝杯咖啡继续干活",
        ),
    },
}

#: Promotion event (10:30-11:00) clauses; positive-heavy.
EVENT_CORES = {
    "pos": (
        "今天会员日满300减80，真的很划算，非常满意",
        "双十一没抢到的别错过，返场价更便宜，很实惠",
        "抢到了返场优惠券，满{money2}减{fee}，很开心",
        "满减叠加优惠券，算下来打了六折，太值了，很满意",
        "今天会员日，金卡还额外送停车券，很贴心，满意",
        "第一次赶上会员日，体验很好，下次还来",
        "返场活动人很多，但店员效率很高，服务态度也很好",
        "会员日在{store}买到了喜欢的东西，满减后超划算",
        "会员日秒杀抢到了，开心，值得",
        "双十一返场比双十一当天还便宜，商场很良心，点赞",
        "会员日领的优惠券直接抵了{fee}块，开心，很满意",
        "会员日的活动真不错，东西便宜质量好，推荐大家去",
        "这次会员日性价比很高，买得很满意",
        "返场活动折扣很大，衣服质量也很好，很划算",
        "会员日送的小礼物很可爱，店员也很热情，好评",
        "会员日的优惠是真的优惠，不错不错",
        "返场活动很好，价格便宜，物超所值",
        "带{friend}来逛会员日，都说很划算，很开心",
        "{rest}的会员日套餐很实惠，味道也很好",
        "会员日人气很旺，优惠力度很大，很满意",
    ),
    "neu": (
        "会员日的满减和优惠券能叠加吗？",
        "返场活动到几点结束？",
        "返场优惠券在哪里领？",
        "会员日{store}也参加满减吗？",
    ),
    "neg": (
        "会员日优惠券一秒就抢光了，根本抢不到",
        "说好的满减，结账时说这件不参加活动",
    ),
}

# --- incident material: every symptom clause contains an incident keyword ---

INCIDENT_PLACES = (
    "星河广场",
    "星河广场",
    "星河广场三楼",
    "星河广场B1美食广场",
    "星河影城",
    "星河商场",
    "星河广场中庭",
    "星河广场二楼",
    "星河广场儿童乐园",
    "星河广场负一楼超市",
    "商场里",
)
INCIDENT_SYMPTOMS = (
    "空调有股怪味",
    "空调吹出来一股霉味",
    "空调异味特别重",
    "一进门就是一股霉味，应该是空调的问题",
    "空调出风口的味道像发霉的抹布",
    "空调风里有股酸臭的怪味",
    "到处都是空调的异味",
    "通风特别差，闷得喘不过气",
    "空调的味道很刺鼻",
    "空调一开整层都是霉味",
    "空调好像很久没清洗了，一股怪味",
    "空气里有股说不出的怪味，感觉是空调吹出来的",
    "中央空调吹的风又闷又臭，一股霉味",
    "通风系统是不是坏了，味道很冲",
    "空调的霉味熏得人受不了",
    "异味重到戴口罩都挡不住",
)
INCIDENT_EFFECTS = (
    "待了十分钟就头晕",
    "头晕恶心",
    "孩子一直喊头疼",
    "嗓子发痒一直咳",
    "眼睛都被熏得难受",
    "我妈差点吐了",
    "赶紧跑出来透气",
    "吃饭都吃不下去",
    "电影看到一半实在受不了出来了",
    "店员都戴上口罩了",
    "好几个人在捂鼻子",
    "现在还有点头晕",
    "胸口闷得慌",
)
INCIDENT_REACTIONS = (
    "商场管理是干什么的？",
    "能不能重视一下！",
    "这还敢开门营业？",
    "强烈要求给个说法",
    "希望相关部门查一查",
    "再也不敢带孩子来了",
    "已经打了客服电话，没人管",
    "这是安全问题好吗",
    "空气检测报告敢不敢公开",
    "客服说在排查，排查到现在？",
    "必须曝光",
    "太不负责任了",
    "到底有没有人管",
)
INCIDENT_TIMES = ("刚刚", "刚才", "中午", "今天", "午饭后", "就在刚才", "", "")
INCIDENT_EMOJI = (
    "😷",
    "🤢",
    "🤮",
    "😡",
    "😤",
    "💢",
    "[怒]",
    "[吐]",
    "[抓狂]",
    "[晕]",
    "",
)
INCIDENT_DEMANDS = (
    "公开空调检测结果并道歉",
    "退还当日消费并赔偿就医费用",
    "立即整改空调和通风系统",
    "给出书面解释",
    "赔礼道歉，承担医药费",
    "停用问题空调，保障顾客健康",
)
INCIDENT_NEUTRAL_EARLY = (
    "星河广场今天空调是不是有点怪味？还是我的错觉",
    "有在星河广场的吗？听说空调有异味",
    "朋友说星河广场空调有怪味，我在一楼倒还好",
    "星河广场空调异味是真的吗，下午还要去看电影",
    "刚进星河广场，好像闻到一点霉味，不确定是哪里来的",
)
INCIDENT_NEUTRAL_PEAK = (
    "看到好多人在说星河广场空调异味的事，附近的说说现场情况？",
    "星河广场空调异味上同城热搜了，吃瓜",
    "本来下午约了星河影城，现在空调有怪味还去不去？",
    "星河广场{floor}现在还有霉味吗？在线等",
    "刷到星河广场空调异味，有人知道是什么原因吗",
)
INCIDENT_NEUTRAL_LATE = (
    "看到星河广场的情况说明了，希望尽快把空调修好",
    "刚路过星河广场，门口在开窗通风",
    "星河广场说是空调过滤网的问题，已经在检修了",
    "听说星河广场的空调异味是B1机组的问题，等后续",
)
INCIDENT_NEG_LATE = (
    "官方说是空调过滤网的问题？那之前那么多人头晕怎么算",
    "都两点多了，星河广场空调还是有股怪味",
    "商场说在检修空调，我看就是在拖",
    "一句过滤网故障就完了？空调异味这么久没人发现？",
    "星河广场的空调异味到现在也没散干净，出来还是头疼",
)
REPOST_COMMENTS_NEG = (
    "太吓人了",
    "转发微博",
    "我下午刚去过！",
    "难怪我头晕",
    "过分了",
    "别去了",
    "怪不得",
    "[怒]",
    "扩散",
)
REPOST_COMMENTS_OFFICIAL = (
    "头晕的医药费谁出？",
    "早干嘛去了",
    "过滤网故障？说得轻巧",
    "道歉有用吗",
    "先把检测报告公开",
    "收到，希望尽快处理好",
    "转发微博",
)
REPOST_COMMENTS = (
    "说得对",
    "同感",
    "哈哈哈哈",
    "+1",
    "真的假的",
    "马住",
    "学到了",
    "[doge]",
    "赞同",
    "确实",
)

SHORT_TEXTS = {
    "pos": ("好", "赞", "不错", "可以", "推荐", "绝了", "爱了", "好评", "👍好"),
    "neg": ("差评", "无语", "垃圾", "坑", "失望", "差", "烂"),
    "neu": ("嗯", "哦", "来了", "路过", "mark", "打卡", "在吗"),
}
#: Texts with no letters at all (punctuation, emoji or weibo emoticon codes).
SYMBOL_TEXTS = (
    "？？？",
    "。。。",
    "！！！",
    "……",
    "😂😂😂",
    "👍👍",
    "🙄",
    "[doge]",
    "😡😡😡",
    "❤️",
    "~~~",
    "?!",
    "🤔🤔",
)

#: Recruitment notices (noise for the 星河广场 topic's ``exclude`` list).
RECRUIT_TEMPLATES = (
    "{mall}{floor}{rest}招聘服务员{n}名，月薪{salary}，包工作餐，有意私信",
    "{mall}{floor}{store}招聘店员，底薪{salary}加提成，周末双休",
    "急招：{mall}{rest}后厨帮工，{salary}，可兼职",
)

# ---------------------------------------------------------------------------
# Traditional characters
# ---------------------------------------------------------------------------

#: Simplified -> traditional pairs for every character of the templates that
#: differs (taken from OpenCC s2t per character, kept only where snownlp's
#: table maps it back; ambiguous characters such as 面/干/只/台/系/着/霉 are
#: deliberately left out, which is valid traditional text).
_S2T_PAIRS = (
    "万萬业業东東丢丟两兩严嚴个個为為么麼乌烏乐樂书書买買乱亂于於云雲亲親从從们們价價优優会會伞傘传傳体體侣侶偿償儿兒兑兌关關内內写寫冲衝决決况況冻凍净淨准準凉涼减減"
    "几幾刘劉刚剛别別劝勸办辦务務动動劲勁区區医醫协協单單卖賣卫衛却卻厅廳厨廚参參双雙发發变變叠疊号號后後吓嚇吗嗎听聽启啟吴吳员員咸鹹响響团團园園围圍图圖圆圓圣聖场場"
    "坏壞块塊声聲壶壺处處备備够夠头頭夸誇妆妝妇婦妈媽婴嬰孙孫学學宝寶实實宠寵宽寬对對导導寿壽将將尘塵尽盡层層岁歲带帶帮幫并並广廣库庫应應开開异異张張弹彈强強归歸当當"
    "录錄态態怜憐总總恶惡惊驚懒懶战戰户戶扩擴扫掃抢搶报報担擔挂掛挡擋挤擠挥揮损損捡撿换換摊攤撑撐数數无無时時显顯晒曬晕暈机機杀殺权權条條来來杨楊极極柜櫃柠檸树樹样樣"
    "桥橋桩樁检檢楼樓欢歡气氣汤湯沟溝没沒泪淚洁潔洒灑测測涨漲渍漬渔漁温溫湾灣满滿滤濾灯燈点點烂爛烦煩烧燒热熱爱愛状狀猫貓环環现現电電画畫畅暢疯瘋痒癢盐鹽监監盖蓋盘盤"
    "码碼砖磚确確礼禮离離积積称稱笼籠签簽简簡紧緊红紅约約级級纸紙线線组組终終经經绑綁结結绕繞给給绝絕统統继繼续續维維绿綠缓緩缴繳网網罗羅职職联聯肠腸脑腦脱脫脸臉范範"
    "荐薦药藥获獲萝蘿营營葱蔥虾蝦补補装裝见見观觀视視觉覺订訂认認让讓议議记記论論设設证證评評诉訴话話诞誕该該详詳语語误誤说說请請诸諸谁誰调調谢謝谱譜贝貝负負责責败敗"
    "账賬货貨购購贴貼贵貴费費赔賠赵趙赶趕车車转轉轻輕边邊达達过過运運还還这這进進远遠连連迟遲适適递遞邻鄰酱醬释釋里裡钟鐘钱錢铁鐵银銀铺鋪链鏈销銷锅鍋错錯键鍵镜鏡长長"
    "门門闪閃问問间間闷悶闺閨闻聞阁閣队隊阳陽阴陰阵陣陈陳随隨难難静靜页頁顺順须須顾顧顿頓颂頌预預领領题題颜顏额額风風飞飛饭飯饮飲饰飾饱飽饼餅馆館马馬验驗骑騎鱼魚鲈鱸"
    "鲜鮮鳗鰻鸡雞鸭鴨麦麥黄黃龙龍"
)
S2T = str.maketrans(dict(zip(_S2T_PAIRS[0::2], _S2T_PAIRS[1::2], strict=True)))


def to_traditional(text: str) -> str:
    """Return ``text`` written in traditional characters (per character)."""
    return text.translate(S2T)


# ---------------------------------------------------------------------------
# Authors
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """An account on one source, with a fixed follower count."""

    handle: str
    source: str
    followers: int


#: Named accounts with fixed follower counts (never drawn at random).
SPECIAL_AUTHORS = {
    "星河广场官方": Author("星河广场官方", "weibo", 205_318),
    "城东晚报": Author("城东晚报", "weibo", 862_457),
    "城东吃喝玩乐": Author("城东吃喝玩乐", "weibo", 356_120),
    "小鹿的周末日记": Author("小鹿的周末日记", "xiaohongshu", 128_764),
    "城东生活圈": Author("城东生活圈", "douyin", 214_903),
    "拾柒不吃香菜": Author("拾柒不吃香菜", "weibo", 863),
    "带娃的周妈妈": Author("带娃的周妈妈", "xiaohongshu", 2_341),
    "老陈要个说法": Author("老陈要个说法", "heimao", 37),
    "星河优惠君": Author("星河优惠君", "weibo", 1_207),
    "省钱小助手88": Author("省钱小助手88", "weibo", 436),
    "羊毛快报": Author("羊毛快报", "weibo", 2_985),
}
#: The authors who post three or more negative incident posts within 40 minutes.
REPEAT_COMPLAINERS = ("拾柒不吃香菜", "带娃的周妈妈", "老陈要个说法")
#: Random authors per source.
POOL_SIZE = {
    "weibo": 1800,
    "dianping": 700,
    "xiaohongshu": 700,
    "douyin": 800,
    "heimao": 400,
}

_HANDLE_ADJ = (
    "爱吃辣的",
    "不想上班的",
    "快乐的",
    "迷糊的",
    "早睡早起的",
    "会飞的",
    "安静的",
    "熬夜的",
    "追风的",
    "佛系的",
    "爱旅行的",
    "减肥中的",
    "努力搬砖的",
    "话很多的",
    "认真生活的",
    "路过的",
)
_HANDLE_NOUN = (
    "小猫",
    "大熊",
    "兔子",
    "橘子",
    "土豆",
    "阿狸",
    "小鱼",
    "咸鱼",
    "打工人",
    "胖虎",
    "团子",
    "小王",
    "老李",
    "桃子",
    "布丁",
    "汤圆",
    "奶盖",
    "芒果",
)
_HANDLE_NAME = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"
_HANDLE_LATIN = (
    "momo",
    "kiki",
    "Sunny",
    "Leo",
    "Coco",
    "jason",
    "Amy",
    "tiger",
    "lucky",
    "Mia",
    "Nana",
    "xiaoyu",
    "dudu",
    "yoyo",
    "Ethan",
    "Vivi",
    "Rain",
    "ace",
)


def _make_handle(rng: Random, source: str) -> str:
    """Return a plausible random handle for an account on ``source``."""
    roll = rng.random()
    if source == "heimao" and roll < 0.55:
        return f"黑猫用户{rng.randrange(10**9, 10**10)}"
    if source == "xiaohongshu" and roll < 0.2:
        return f"小红薯{rng.randrange(16**7, 16**8):X}"
    if source == "weibo" and roll < 0.15:
        return f"用户{rng.randrange(10**9, 10**10)}"
    if source == "douyin" and roll < 0.12:
        return f"用户{rng.randrange(10**6, 10**7)}"
    roll = rng.random()
    if roll < 0.4:
        handle = rng.choice(_HANDLE_ADJ) + rng.choice(_HANDLE_NOUN)
        if rng.random() < 0.4:
            handle += str(rng.randrange(1, 1000))
        return handle
    if roll < 0.6:
        return (
            rng.choice("阿小老大")
            + rng.choice(_HANDLE_NAME)
            + rng.choice(("", "同学", "酱", "哥", "姐", "呀", "不吃葱", "在城东"))
            + (str(rng.randrange(10, 100)) if rng.random() < 0.3 else "")
        )
    latin = rng.choice(_HANDLE_LATIN)
    if rng.random() < 0.5:
        return (
            latin
            + rng.choice(("_", "", ".", "-"))
            + str(rng.choice((rng.randrange(1985, 2006), rng.randrange(1, 999))))
        )
    return latin + rng.choice(("小雨", "酱", "的日常", "在路上", "🍑", "✨", "吃货"))


def _follower_count(rng: Random, source: str) -> int:
    """Draw a heavy-tailed follower count (most 10-1000, a few 10^5-10^6)."""
    roll = rng.random()
    if source == "heimao":
        return int(rng.lognormvariate(2.5, 1.0))
    if roll < 0.006:
        return int(10 ** rng.uniform(5.0, 6.3))
    if roll < 0.03:
        return int(10 ** rng.uniform(4.0, 5.0))
    if roll < 0.12:
        return int(10 ** rng.uniform(3.0, 4.0))
    return min(int(rng.lognormvariate(4.8, 1.0)), 3000)


class AuthorBook:
    """Random author pools per source, with Zipf-like posting activity."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        taken = set(SPECIAL_AUTHORS)
        self.pools: dict[str, list[Author]] = {}
        self._cum_weights: dict[str, list[float]] = {}
        for source in SOURCES:
            pool: list[Author] = []
            while len(pool) < POOL_SIZE[source]:
                handle = _make_handle(rng, source)
                if handle in taken:
                    continue
                taken.add(handle)
                pool.append(Author(handle, source, _follower_count(rng, source)))
            self.pools[source] = pool
            self._cum_weights[source] = list(
                accumulate(1.0 / (rank + 5) for rank in range(len(pool)))
            )
        self._incident_used: set[str] = set()

    def active(self, source: str) -> Author:
        """Draw an author for an ordinary post (a few authors post a lot)."""
        pool = self.pools[source]
        cum = self._cum_weights[source]
        return pool[bisect_left(cum, self._rng.random() * cum[-1])]

    def incident(self, source: str) -> Author:
        """Draw an author with no incident post yet (at most one each)."""
        pool = self.pools[source]
        while True:
            author = self._rng.choice(pool)
            if author.handle not in self._incident_used:
                self._incident_used.add(author.handle)
                return author


# ---------------------------------------------------------------------------
# Text factory
# ---------------------------------------------------------------------------

#: Slots that keep one value within a post (same restaurant in a whole review).
_STICKY_SLOTS = frozenset(
    {
        "mall",
        "rest",
        "cinema",
        "app",
        "movie",
        "phone",
        "store",
        "friend",
        "price",
        "floor",
        "hall",
    }
)
_SLOT = re.compile(r"\{(\w+)\}")
_END_PUNCT = "？?！!。~～…）)」"


class TextFactory:
    """Builds post texts from the phrase material, in each source's style."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self._ctx: dict[str, str] = {}

    # -- slots -------------------------------------------------------------

    def new_post(self) -> None:
        """Forget the sticky slot values of the previous post."""
        self._ctx = {}

    def _slot_value(self, name: str) -> str:
        rng = self.rng
        if name in _STICKY_SLOTS and name in self._ctx:
            return self._ctx[name]
        generators: dict[str, Callable[[], str]] = {
            "mall": lambda: "星河商场" if rng.random() < 0.15 else "星河广场",
            "rest": lambda: rng.choice(RESTAURANTS),
            "dish": lambda: rng.choice(RESTAURANT_DISHES[self._slot_value("rest")]),
            "dish2": lambda: rng.choice(
                [
                    d
                    for d in RESTAURANT_DISHES[self._slot_value("rest")]
                    if d != self._ctx.get("dish")
                ]
            ),
            "floor": lambda: rng.choice(FLOORS),
            "store": lambda: rng.choice(STORES),
            "movie": lambda: rng.choice(MOVIES),
            "hall": lambda: rng.choice(HALLS),
            "cinema": lambda: "星河影城",
            "app": lambda: rng.choice(APPS),
            "phone": lambda: rng.choice(PHONES),
            "friend": lambda: rng.choice(FRIENDS),
            "mins": lambda: rng.choice(MINUTES),
            "hours": lambda: rng.choice(HOURS),
            "n": lambda: str(rng.randint(2, 6)),
            "price": lambda: str(rng.randrange(45, 260, 5)),
            "fee": lambda: str(rng.choice((5, 8, 10, 12, 15, 20, 30))),
            "money": lambda: str(rng.randrange(30, 1500)),
            "money2": lambda: str(rng.choice((100, 150, 200, 300, 500))),
            "points": lambda: f"{rng.randrange(100, 5000, 10)}积分",
            "salary": lambda: (
                f"{rng.randrange(4, 9)}{rng.choice('05')}00-{rng.randrange(7, 12)}000元"
            ),
        }
        value = generators[name]()
        self._ctx[name] = value
        return value

    def fill(self, template: str) -> str:
        """Replace every ``{slot}`` of ``template`` with a value."""
        return _SLOT.sub(lambda m: self._slot_value(m.group(1)), template)

    # -- helpers -----------------------------------------------------------

    def _finish(self, clause: str, sentiment: str, bare: bool = True) -> str:
        """End a clause with punctuation matching its sentiment.

        Args:
            clause: The clause; returned as is if it already ends with punctuation.
            sentiment: ``pos``, ``neu`` or ``neg``.
            bare: Whether the clause may also be left without punctuation
                (only sensible at the very end of a post).

        """
        if not clause or clause[-1] in _END_PUNCT:
            return clause
        endings = {
            "pos": ("！", "。", "～", "！！"),
            "neg": ("！", "。", "！！", "…"),
            "neu": ("。", "。"),
        }[sentiment]
        if bare:
            endings += ("",)
        return clause + self.rng.choice(endings)

    def _cores(self, aspect: str, sentiment: str, count: int) -> list[str]:
        """Pick ``count`` distinct filled core clauses about the same place.

        From the second clause on, a leading place name becomes a pronoun
        (他家, 商场, 影城) as people write.
        """
        pool = CORES[aspect][sentiment]
        picked = self.rng.sample(pool, min(count, len(pool)))
        return self._pronouns([self.fill(template) for template in picked])

    def _pronouns(self, clauses: list[str]) -> list[str]:
        """Replace a place name that starts a clause by a pronoun once it was named."""
        named: set[str] = set()
        for index, clause in enumerate(clauses):
            for slot, pronouns in (
                ("rest", ("他家", "这家店", "店里")),
                ("mall", ("商场", "这里")),
                ("cinema", ("影城",)),
            ):
                value = self._ctx.get(slot)
                if not value or not clause.startswith(value):
                    continue
                if value in named:
                    clauses[index] = self.rng.choice(pronouns) + clause[len(value) :]
                named.add(value)
        return clauses

    def _join(self, clauses: Sequence[str]) -> str:
        """Join clauses with commas, except after one that ends with punctuation."""
        text = ""
        for clause in clauses:
            if text and text[-1] not in _END_PUNCT:
                text += "，"
            text += clause
        return text

    def _emoji(
        self, table: dict[str, tuple[str, ...]], sentiment: str, most: int = 2
    ) -> str:
        return "".join(
            self.rng.choice(table[sentiment]) for _ in range(self.rng.randint(1, most))
        )

    # -- background ----------------------------------------------------------

    def background(
        self, source: str, aspect: str, sentiment: str, long: bool = False
    ) -> str:
        """Return a background post about ``aspect`` in ``source``'s style."""
        self.new_post()
        if long and sentiment != "neu":
            return self._long(source, aspect, sentiment)
        style = {
            "weibo": self._weibo,
            "dianping": self._dianping,
            "xiaohongshu": self._xiaohongshu,
            "douyin": self._douyin,
            "heimao": self._heimao,
        }[source]
        return style(aspect, sentiment)

    def _weibo(self, aspect: str, sentiment: str) -> str:
        rng = self.rng
        cores = self._cores(aspect, sentiment, 2 if rng.random() < 0.15 else 1)
        closer = rng.choice(CLOSERS[sentiment]) if rng.random() < 0.35 else ""
        text = rng.choice(OPENERS[sentiment]) + self._finish(
            self._join(cores), sentiment, bare=not closer
        )
        if closer:
            text += self._finish(closer, sentiment)
        if rng.random() < 0.45:
            text += self._emoji(WEIBO_EMOJI, sentiment)
        if rng.random() < 0.3:
            tag = f"#{rng.choice(HASHTAGS[aspect])}#"
            text = f"{tag}{text}" if rng.random() < 0.5 else f"{text} {tag}"
        if rng.random() < 0.04 and aspect != "generic":
            text += " @星河广场官方"
        return text

    def _dianping(self, aspect: str, sentiment: str) -> str:
        rng = self.rng
        cores = self._cores(
            aspect,
            sentiment,
            rng.randint(1, 2) if sentiment == "neu" else rng.randint(2, 4),
        )
        pieces = []
        for index, core in enumerate(cores):
            if index == len(cores) - 1 or core[-1] in _END_PUNCT or rng.random() < 0.5:
                pieces.append(self._finish(core, sentiment, bare=False))
            else:
                pieces.append(core + "，")
        body = "".join(pieces)
        scores = {"pos": (4, 5), "neu": (3, 4), "neg": (1, 3)}[sentiment]
        parts = []
        if rng.random() < 0.45:
            taste, env, service = (rng.randint(*scores) for _ in range(3))
            label = {"restaurant": "口味", "cinema": "效果"}.get(aspect, "设施")
            parts.append(f"{label}：{taste} 环境：{env} 服务：{service}\n")
        parts.append(body)
        if aspect == "restaurant" and rng.random() < 0.5:
            parts.append(f"人均：¥{self._slot_value('price')}。")
        if rng.random() < 0.4:
            closer = rng.choice(CLOSERS[sentiment])
            if closer:
                parts.append(self._finish(closer, sentiment))
        return "".join(parts)

    def _xiaohongshu(self, aspect: str, sentiment: str) -> str:
        rng = self.rng
        if aspect == "generic":
            titles = {
                "pos": ("周五的小确幸", "今日份快乐", "碎碎念"),
                "neg": ("谁懂啊", "今天好丧", "碎碎念"),
                "neu": ("碎碎念", "记录一下"),
            }
        else:
            titles = {
                "pos": (
                    "{mall}宝藏攻略",
                    "周五下午的小确幸",
                    "今日份快乐",
                    "打卡{mall}",
                    "被{mall}圈粉了",
                    "好物分享",
                ),
                "neg": ("避雷‼️", "谁懂啊", "踩雷了家人们", "真的会谢", "劝退"),
                "neu": ("求问", "{mall}攻略整理", "小白提问", "记录一下"),
            }
        title = self.fill(rng.choice(titles[sentiment])) + self._emoji(
            XHS_EMOJI, sentiment
        )
        cores = self._cores(aspect, sentiment, rng.randint(1, 3))
        body = "".join(
            self._finish(core, sentiment, bare=False)
            + (self._emoji(XHS_EMOJI, sentiment, 1) if rng.random() < 0.5 else "")
            for core in cores
        )
        opener = (
            rng.choice(("", "姐妹们！", "宝子们，", "家人们，", ""))
            if sentiment != "neu"
            else ""
        )
        tag_pool: tuple[str, ...] = (
            "#星河广场[话题]#",
            "#探店[话题]#",
            "#周末去哪儿[话题]#",
            "#城东美食[话题]#",
            "#打卡[话题]#",
            "#日常碎片[话题]#",
        )
        if aspect == "generic":
            tag_pool = ("#日常碎片[话题]#", "#打工人[话题]#", "#今日份心情[话题]#")
        tags = rng.sample(tag_pool, rng.randint(1, min(3, len(tag_pool))))
        if sentiment == "neg" and rng.random() < 0.5:
            tags.append("#避雷[话题]#")
        return f"{title}\n{opener}{body}\n{' '.join(tags)}"

    def _douyin(self, aspect: str, sentiment: str) -> str:
        rng = self.rng
        openers = {
            "pos": ("", "家人们，", "绝了！", "姐妹们，", "兄弟们，", "太可了，"),
            "neg": ("", "家人们谁懂啊，", "救命，", "服了，", "兄弟们避坑，"),
            "neu": ("", "", "问下，", "路过，"),
        }[sentiment]
        core = self._cores(aspect, sentiment, 1)[0]
        text = rng.choice(openers) + self._finish(core, sentiment)
        if rng.random() < 0.5:
            text += self._emoji(XHS_EMOJI, sentiment)
        if rng.random() < 0.6:
            tags = rng.sample(
                ("#星河广场", "#探店", "#城东", "#周末vlog", "#打卡", "#日常"),
                rng.randint(1, 3),
            )
            text += " " + " ".join(tags)
        return text

    def _heimao(self, aspect: str, sentiment: str) -> str:
        rng = self.rng
        target = {
            "service": "星河广场客服中心",
            "delivery": "星河到家",
            "app": "星河生活App",
            "parking": "星河广场停车场",
            "restaurant": "{rest}（星河广场店）",
            "mall": "星河广场",
            "generic": "星河广场",
            "cinema": "星河影城",
        }[aspect]
        target = self.fill(target)
        if sentiment != "neg":
            return rng.choice(
                (
                    f"【补充】投诉对象：{target}。商家已主动联系我，问题正在处理中，先更新一下进度。",
                    f"投诉对象：{target}\n处理进展：商家已回复，称{rng.choice(('三个工作日内', '本周内', '尽快'))}给出方案，等待中。",
                    f"投诉对象：{target}\n补充说明：附上订单截图和沟通记录，等待平台介入。",
                )
            )
        demands = {
            "service": ("退款", "道歉", "给出合理解释", "处理相关责任人"),
            "delivery": ("退款", "补发商品", "赔偿损失", "道歉"),
            "app": ("恢复积分", "退款", "修复问题", "给出合理解释"),
            "parking": ("退还停车费", "道歉", "整改收费"),
            "restaurant": ("退款", "道歉并赔偿", "整改卫生"),
            "mall": ("道歉", "整改服务", "给出合理解释"),
            "cinema": ("退票退款", "道歉", "赔偿损失"),
            "generic": ("道歉", "给出合理解释"),
        }[aspect]
        problem = self._cores(aspect, "neg", 1)[0]
        amount = (
            0
            if aspect in ("mall", "generic")
            else rng.choice((0, rng.randrange(10, 300), rng.randrange(50, 900)))
        )
        demand = "、".join(rng.sample(demands, rng.randint(1, 2)))
        if rng.random() < 0.5:
            text = f"投诉对象：{target}\n投诉问题：{problem}\n投诉要求：{demand}\n涉诉金额：{amount}元"
        else:
            text = f"【投诉对象】{target} 【投诉问题】{problem} 【投诉要求】{demand} 【涉诉金额】{amount}元"
        if rng.random() < 0.5:
            text += f"\n本人于11月{rng.randint(10, 20)}日在{target}消费，{problem}。多次联系商家无果，特此投诉，望平台督促处理。"
        return text

    def _long(self, source: str, aspect: str, sentiment: str) -> str:
        """Return a post of 300+ characters (a detailed review or complaint)."""
        rng = self.rng
        clauses: list[str] = []
        aspects = [aspect] + [
            a
            for a in ("mall", "restaurant", "parking", "cinema", "service")
            if a != aspect
        ]
        for asp in aspects:
            templates = list(CORES[asp][sentiment])
            rng.shuffle(templates)
            clauses.extend(self._pronouns([self.fill(t) for t in templates[:4]]))
        intro = {
            "pos": "写个长评，今天在{mall}待了一整天，说说感受。",
            "neg": "忍了很久还是决定写个长评，把今天在{mall}遇到的事情说清楚。",
            "neu": "整理一下今天在{mall}的流水账，给要去的朋友参考。",
        }[sentiment]
        text = self.fill(intro)
        for clause in clauses:
            text += self._finish(clause, sentiment, bare=False)
            if len(text) >= 300 + rng.randrange(0, 160):
                break
        outro = {
            "pos": "总之这次体验很好，会推荐给身边的朋友。",
            "neg": "以上都是亲身经历，希望商场认真整改。",
            "neu": "以上仅供参考。",
        }[sentiment]
        text += outro
        if source == "heimao":
            target = "星河广场"
            demand = "退款并道歉" if sentiment == "neg" else "跟进处理"
            text = f"投诉对象：{target}\n投诉问题：详见描述\n投诉要求：{demand}\n涉诉金额：{rng.randrange(50, 900)}元\n{text}"
        elif source == "xiaohongshu":
            text = f"{self.fill('{mall}')}长文预警📝\n{text}\n#星河广场[话题]#"
        return text

    def short(self, sentiment: str) -> str:
        """Return a one- or two-character post."""
        return self.rng.choice(SHORT_TEXTS[sentiment])

    def symbols(self) -> str:
        """Return a post of punctuation and/or emoji only."""
        return self.rng.choice(SYMBOL_TEXTS)

    def recruit(self) -> str:
        """Return a recruitment notice."""
        self.new_post()
        return self.fill(self.rng.choice(RECRUIT_TEMPLATES))

    # -- positive event -------------------------------------------------------

    def event(self, source: str, sentiment: str) -> str:
        """Return a post about the 双十一返场 / 会员日 promotion."""
        rng = self.rng
        self.new_post()
        core = self._finish(self.fill(rng.choice(EVENT_CORES[sentiment])), sentiment)
        if source == "weibo":
            text = core + (
                self._emoji(WEIBO_EMOJI, sentiment) if rng.random() < 0.6 else ""
            )
            if rng.random() < 0.05:
                text = rng.choice(("#星河会员日# ", "#双十一返场# ")) + text
            return text
        if source == "xiaohongshu":
            title = rng.choice(("会员日攻略", "返场捡漏", "今天的战利品", "薅羊毛成功"))
            tags = (
                "#好物分享[话题]#"
                if rng.random() < 0.9
                else "#星河会员日[话题]# #双十一返场[话题]#"
            )
            return f"{title}{self._emoji(XHS_EMOJI, sentiment)}\n{core}{self._emoji(XHS_EMOJI, sentiment)}\n{tags}"
        if source == "douyin":
            tags = " #星河会员日 #双十一返场" if rng.random() < 0.08 else ""
            return rng.choice(("", "家人们，", "冲！")) + core + tags
        return f"趁会员日来的，{core}人均：¥{self._slot_value('price')}。"

    # -- incident -------------------------------------------------------------

    def incident(self, source: str, minute: float, negative: bool) -> str:
        """Return a post about the air-conditioning incident at ``minute``."""
        rng = self.rng
        self.new_post()
        if not negative:
            pool: tuple[str, ...]
            if minute < INCIDENT_ONSET_MIN + 15:
                pool = INCIDENT_NEUTRAL_EARLY
            elif minute >= OFFICIAL_STATEMENT_MIN:
                pool = INCIDENT_NEUTRAL_LATE
            else:
                pool = INCIDENT_NEUTRAL_PEAK
            text = self.fill(rng.choice(pool))
            if source == "xiaohongshu":
                return f"求问🙋‍♀️\n{text}\n#星河广场[话题]#"
            if source == "heimao":
                return f"投诉对象：星河广场\n补充说明：{text}，等待商家回复。"
            return text
        place = rng.choice(INCIDENT_PLACES)
        symptom = rng.choice(INCIDENT_SYMPTOMS)
        effect = rng.choice(INCIDENT_EFFECTS)
        reaction = rng.choice(INCIDENT_REACTIONS)
        when = rng.choice(INCIDENT_TIMES)
        if minute >= OFFICIAL_STATEMENT_MIN and rng.random() < 0.3:
            core = rng.choice(INCIDENT_NEG_LATE)
        else:
            shape = rng.randrange(4)
            if shape == 0:
                core = f"{when}在{place}，{symptom}，{effect}。{reaction}"
            elif shape == 1:
                core = f"{place}{symptom}！{effect}，{reaction}"
            elif shape == 2:
                core = f"{when}去{place.removesuffix('里')}，{effect}，原来是{symptom}。{reaction}"
            else:
                core = f"{place}{symptom}，{reaction}"
        if source == "weibo":
            text = core + rng.choice(INCIDENT_EMOJI)
            if rng.random() < 0.35:
                text += " #星河广场空调异味#"
            return text
        if source == "xiaohongshu":
            title = rng.choice(
                (
                    "避雷‼️",
                    "星河广场空调有毒吧😷",
                    "姐妹们千万别去了🤢",
                    "今天的星河广场好可怕",
                    "带娃的注意⚠️",
                )
            )
            return f"{title}\n{core}{rng.choice(XHS_EMOJI['neg'])}\n#星河广场[话题]# #避雷[话题]#"
        if source == "douyin":
            opener = rng.choice(("家人们，", "救命，", "真的服了，", "谁懂啊，", ""))
            return f"{opener}{core}{rng.choice(INCIDENT_EMOJI)} #星河广场 #空调异味"
        if source == "dianping":
            rest = self._slot_value("rest")
            place = rng.choice(
                ("星河广场", "星河广场三楼", "星河广场B1美食广场", "商场里", "店里")
            )
            return (
                f"口味：{rng.randint(2, 4)} 环境：1 服务：{rng.randint(1, 3)}\n"
                f"{rest}菜本身没问题，但今天{place}{symptom}，{effect}，吃饭体验直接归零。{reaction}"
            )
        amount = rng.choice((0, 0, rng.randrange(50, 600)))
        demand = rng.choice(INCIDENT_DEMANDS)
        text = f"投诉对象：星河广场\n投诉问题：{symptom}，{effect}\n投诉要求：{demand}\n涉诉金额：{amount}元"
        if rng.random() < 0.5:
            text += f"\n本人今天{rng.choice(('中午', '下午一点多', '午饭时间'))}在{place}，{symptom}，{effect}。现场工作人员没有任何说明，特此投诉。"
        return text


# ---------------------------------------------------------------------------
# Variants applied on top of any text
# ---------------------------------------------------------------------------


def add_html(text: str, rng: Random) -> str:
    """Return ``text`` with HTML tags or entities as some crawlers deliver them."""
    kind = rng.randrange(5)
    if kind == 0:
        return text.replace("，", "<br>", 1) if "，" in text else text + "<br>"
    if kind == 1:
        code = "".join(
            rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789")
            for _ in range(7)
        )
        return f'{text} <a href="https://t.cn/A6{code}" target="_blank">网页链接</a>'
    if kind == 2:
        if "和" in text:
            return text.replace("和", "&amp;", 1)
        if "星河广场" in text:
            return text.replace("星河广场", "&quot;星河广场&quot;", 1)
        return text + "&nbsp;&#128514;"
    if kind == 3:
        return "<p>" + text.replace("。", "。</p><p>", 1) + "</p>"
    return text + "<br><br>&gt;&gt; 来自星河生活App"


# ---------------------------------------------------------------------------
# Posts
# ---------------------------------------------------------------------------


@dataclass
class Draft:
    """A post before ids and URLs are assigned.

    ``kind`` and ``sentiment`` are ground truth used for the statistics; they
    are not written to the feed.
    """

    second: int
    seq: int
    kind: str
    source: str
    author: Author | None
    text: str
    sentiment: str
    aspect: str = ""
    metrics: dict[str, int] | None = None
    topic: str | None = None
    customer_tier: str | None = None
    hide_source: bool = False
    flags: set[str] = field(default_factory=set)
    post_id: str = ""

    @property
    def when(self) -> datetime:
        """Publication time."""
        return DAY_START + timedelta(seconds=self.second)


@dataclass(frozen=True)
class Fixed:
    """A hand-written post at a fixed time."""

    clock: str
    kind: str
    author: str
    text: str
    sentiment: str
    likes: int | None = None
    reposts: int | None = None

    @property
    def second(self) -> int:
        """Seconds after DAY_START."""
        hour, minute, second = (int(part) for part in self.clock.split(":"))
        return (hour - 9) * 3600 + minute * 60 + second


#: Minute of the mall's official statement (14:08).
OFFICIAL_STATEMENT_MIN = 308
#: Minute of the newspaper post that gets heavily reposted (13:34).
NEWS_POST_MIN = 274

NEWS_TEXT = (
    "【星河广场多名顾客反映空调异味 有人出现头晕不适】今天中午起，不少网友反映星河广场商场内"
    "空调出风有明显霉味，部分顾客出现头晕、咽喉不适等症状。记者已联系商场方面，对方表示正在排查原因。"
    "#星河广场空调异味#"
)
OFFICIAL_TEXT = (
    "【关于商场空调异味的情况说明】今日13时起，部分顾客反映星河广场内有异味。经初步排查，系B1层一台"
    "空调机组新风过滤网积尘受潮所致，目前已停机检修，并开启全部排风加强通风。给大家带来的不便深表歉意，"
    "身体不适的顾客请联系一楼服务台，我们将全力协助。"
)
EVENT_AD_TEXT = (
    "【会员日福利】满300减80，优惠券限量领取，超值优惠不要错过！👉 打开星河生活App"
)

FIXED_POSTS: tuple[Fixed, ...] = (
    # -- positive event ----------------------------------------------------
    Fixed(
        "10:30:00",
        "event",
        "星河广场官方",
        "【双十一返场·星河会员日】今天10:30起，全场满300减80，会员积分翻倍！打开星河生活App领取优惠券，"
        "部分品牌低至五折🎉 #星河会员日#",
        "pos",
        862,
        418,
    ),
    Fixed("10:31:12", "event_ad", "星河优惠君", EVENT_AD_TEXT, "neu", 3, 1),
    Fixed("10:33:40", "event_ad", "省钱小助手88", EVENT_AD_TEXT, "neu", 0, 0),
    Fixed("10:38:05", "event_ad", "羊毛快报", EVENT_AD_TEXT, "neu", 12, 6),
    Fixed("10:44:51", "event_ad", "星河优惠君", EVENT_AD_TEXT, "neu", 1, 0),
    Fixed(
        "10:46:12",
        "event",
        "城东吃喝玩乐",
        "星河会员日实测：满减加优惠券叠加，蜀香阁火锅双人套餐算下来不到五折，还送停车券，冲就完了！#星河会员日#",
        "pos",
        1530,
        344,
    ),
    Fixed("10:49:30", "event_ad", "省钱小助手88", EVENT_AD_TEXT, "neu", 0, 0),
    Fixed("10:52:18", "event_ad", "羊毛快报", EVENT_AD_TEXT, "neu", 7, 2),
    Fixed("10:57:44", "event_ad", "星河优惠君", EVENT_AD_TEXT, "neu", 2, 0),
    # -- background posts that match the 空调异味 keywords (not the incident) --
    Fixed(
        "09:41:08",
        "ac_background",
        "random:weibo",
        "星河广场里空调开得挺暖和，外面降温了，进来就不想走",
        "pos",
    ),
    Fixed(
        "10:17:23",
        "ac_background",
        "random:dianping",
        "星河影城3号厅空调暖风开太大了，看场电影热得冒汗，建议调低一点。",
        "neg",
    ),
    Fixed(
        "10:52:30",
        "ac_background",
        "random:xiaohongshu",
        "星河广场冬天逛街天花板✨\n空调温度刚刚好，外套一脱轻装上阵☺️\n#星河广场[话题]#",
        "pos",
    ),
    Fixed(
        "11:52:40",
        "ac_background",
        "random:weibo",
        "星河广场B1美食广场中午人太多了，通风一般，有点闷",
        "neg",
    ),
    Fixed(
        "12:21:15",
        "ac_background",
        "random:douyin",
        "星河广场一楼中庭在换新的空调出风口，围了挡板 #星河广场",
        "neu",
    ),
    Fixed(
        "14:47:55",
        "ac_background",
        "random:weibo",
        "下午又去了一趟星河广场，空调的味道已经没了，通风也正常了，点个赞",
        "pos",
    ),
    Fixed(
        "14:55:02",
        "ac_background",
        "random:dianping",
        "商场空调那事好像处理好了，拾味小厨照常营业，椒麻鸡还是好吃。",
        "pos",
    ),
    # -- incident: influential accounts ------------------------------------
    Fixed(
        "13:22:36",
        "incident",
        "城东吃喝玩乐",
        "后台收到好多私信，说星河广场今天空调有股很冲的霉味，有人待一会儿就头晕。附近的朋友可以先别去，"
        "有现场情况欢迎评论区补充。#星河广场空调异味#",
        "neg",
        2140,
        1263,
    ),
    Fixed("13:34:10", "incident", "城东晚报", NEWS_TEXT, "neg", 5820, 3417),
    Fixed(
        "13:41:20",
        "incident",
        "小鹿的周末日记",
        "⚠️姐妹们今天先别去星河广场！\n中午去逛了一圈，一进门就是一股发霉的怪味，三楼最严重，空调出风口吹的风都是臭的🤢 "
        "逛了二十分钟头晕眼花，店员也都在咳嗽。\n#星河广场[话题]# #避雷[话题]# #空调异味[话题]#",
        "neg",
        9874,
        1532,
    ),
    Fixed(
        "13:47:05",
        "incident",
        "城东生活圈",
        "实探星河广场：空调异味明显，三楼部分商户已经开门通风，商场工作人员称正在排查 #星河广场 #空调异味 #城东身边事",
        "neg",
        18406,
        2261,
    ),
    Fixed("14:08:00", "incident", "星河广场官方", OFFICIAL_TEXT, "neu", 1322, 2874),
    # -- incident: repeat complainers --------------------------------------
    Fixed(
        "13:12:41",
        "incident",
        "拾柒不吃香菜",
        "星河广场三楼的空调一股霉味，饭吃到一半就没胃口了，差评。",
        "neg",
        4,
        0,
    ),
    Fixed(
        "13:24:05",
        "incident",
        "拾柒不吃香菜",
        "还在星河广场，霉味越来越重了，现在有点头晕，服务员说他们也闻到了但没办法。太离谱了😡 #星河广场空调异味#",
        "neg",
        31,
        5,
    ),
    Fixed(
        "13:38:52",
        "incident",
        "拾柒不吃香菜",
        "打了星河广场客服电话，说在排查，让我等。等什么？头晕到现在还没缓过来！空调这么臭还敢开门营业？",
        "neg",
        57,
        12,
    ),
    Fixed(
        "13:49:30",
        "incident",
        "拾柒不吃香菜",
        "第三次说了：星河广场空调异味到现在都没处理，我已经出来了，头还是晕的，必须给个说法！@星河广场官方",
        "neg",
        88,
        23,
    ),
    Fixed(
        "13:19:15",
        "incident",
        "带娃的周妈妈",
        "避雷‼️带娃来星河广场儿童乐园，空调有股很重的怪味，宝宝一直捂鼻子说臭😷\n#星河广场[话题]#",
        "neg",
        46,
        3,
    ),
    Fixed(
        "13:31:48",
        "incident",
        "带娃的周妈妈",
        "更新：孩子说头晕想吐，赶紧带出来了。星河广场的空调到底多久没洗了？当妈的真的很生气😡\n#星河广场[话题]# #避雷[话题]#",
        "neg",
        213,
        17,
    ),
    Fixed(
        "13:57:02",
        "incident",
        "带娃的周妈妈",
        "再更新：带娃去社区医院看了，医生说可能是吸入了不干净的空气。星河广场空调异味的事一定要有个交代，已经在黑猫投诉了。",
        "neg",
        402,
        38,
    ),
    Fixed(
        "13:26:10",
        "incident",
        "老陈要个说法",
        "投诉对象：星河广场\n投诉问题：商场空调散发严重霉味，本人在店内停留约二十分钟后出现头晕、恶心症状\n"
        "投诉要求：公开空调检测结果，赔礼道歉\n涉诉金额：0元",
        "neg",
        5,
        0,
    ),
    Fixed(
        "13:44:37",
        "incident",
        "老陈要个说法",
        "投诉对象：星河广场\n投诉问题：补充投诉，空调异味问题持续，现场工作人员称“没接到通知”，无人疏散顾客\n"
        "投诉要求：立即停用问题空调、加强通风，承担就医费用\n涉诉金额：300元",
        "neg",
        12,
        0,
    ),
    Fixed(
        "14:03:55",
        "incident",
        "老陈要个说法",
        "投诉对象：星河广场客服中心\n投诉问题：第三次投诉，客服电话无人接听，空调异味导致身体不适至今未获任何回复\n"
        "投诉要求：书面道歉并赔偿医药费、误工费\n涉诉金额：800元",
        "neg",
        19,
        0,
    ),
)

# ---------------------------------------------------------------------------
# Rates and arrivals
# ---------------------------------------------------------------------------


def background_rate(minute: float) -> float:
    """Background posts per minute (piecewise-linear daytime curve)."""
    for (m0, r0), (m1, r1) in zip(BACKGROUND_KNOTS, BACKGROUND_KNOTS[1:], strict=False):
        if m0 <= minute <= m1:
            return r0 + (r1 - r0) * (minute - m0) / (m1 - m0)
    return BACKGROUND_KNOTS[-1][1]


def incident_rate(minute: float) -> float:
    """Incident posts per minute: quadratic ramp, plateau, exponential decay."""
    if minute < INCIDENT_ONSET_MIN or minute >= INCIDENT_END_MIN:
        return 0.0
    if minute < INCIDENT_PEAK_MIN:
        return (
            INCIDENT_PEAK_RATE
            * ((minute - INCIDENT_ONSET_MIN) / (INCIDENT_PEAK_MIN - INCIDENT_ONSET_MIN))
            ** 2
        )
    if minute < INCIDENT_PLATEAU_END_MIN:
        return INCIDENT_PEAK_RATE
    decay = math.log(2) / INCIDENT_HALF_LIFE_MIN
    return INCIDENT_PEAK_RATE * math.exp(-decay * (minute - INCIDENT_PLATEAU_END_MIN))


def event_rate(minute: float) -> float:
    """Extra promotion posts per minute (triangle 10:30-11:00, peak 10:45)."""
    if minute <= EVENT_START_MIN or minute >= EVENT_END_MIN:
        return 0.0
    if minute <= EVENT_PEAK_MIN:
        return (
            EVENT_PEAK_RATE
            * (minute - EVENT_START_MIN)
            / (EVENT_PEAK_MIN - EVENT_START_MIN)
        )
    return EVENT_PEAK_RATE * (EVENT_END_MIN - minute) / (EVENT_END_MIN - EVENT_PEAK_MIN)


def poisson_arrivals(
    rng: Random,
    rate: Callable[[float], float],
    start: float,
    end: float,
    max_rate: float,
) -> list[int]:
    """Arrival seconds of a non-homogeneous Poisson process (Lewis-Shedler thinning).

    Args:
        rng: The random source.
        rate: Posts per minute as a function of the minute.
        start: First minute of the interval.
        end: End minute (exclusive).
        max_rate: An upper bound of ``rate`` on the interval.

    """
    arrivals: list[int] = []
    minute = start
    while True:
        minute += rng.expovariate(max_rate)
        if minute >= end:
            return arrivals
        if rng.random() * max_rate < rate(minute):
            arrivals.append(int(minute * 60))


def _weighted(rng: Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


class FeedGenerator:
    """Generates the drafts of the whole feed from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.authors = AuthorBook(self.rng)
        self.texts = TextFactory(self.rng)
        self.drafts: list[Draft] = []
        self._weibo_recent: list[Draft] = []
        self._incident_weibo: list[Draft] = []
        self._news: Draft | None = None
        self._official: Draft | None = None

    # -- metrics and optional fields ------------------------------------------

    def _metrics(
        self, author: Author | None, boost: float = 1.0
    ) -> dict[str, int] | None:
        rng = self.rng
        if author is None or rng.random() < 0.06:
            return None
        base = 0.4 + author.followers**0.62 * 0.12
        likes = int(base * rng.lognormvariate(0.0, 0.9) * boost)
        reposts = int(likes * rng.uniform(0.02, 0.3) * (1.5 if boost > 1 else 1.0))
        if author.source in ("dianping", "heimao"):
            reposts = int(reposts * 0.2)
        return {"likes": likes, "reposts": reposts, "followers": author.followers}

    def _tier(self, source: str, aspect: str) -> str | None:
        rng = self.rng
        chance = (
            0.15
            if source == "dianping"
            else 0.25
            if source == "heimao"
            else 0.2
            if aspect in ("app", "service")
            else 0.03
        )
        if rng.random() >= chance:
            return None
        return rng.choices(("gold", "silver", "regular"), weights=(0.15, 0.3, 0.55))[0]

    def _add(self, draft: Draft) -> Draft:
        rng = self.rng
        if draft.source == "weibo" and draft.kind in ("background", "event"):
            self._weibo_recent.append(draft)
            if len(self._weibo_recent) > 300:
                self._weibo_recent.pop(0)
        if draft.kind in ("background", "event", "incident") and not draft.flags & {
            "fixed"
        }:
            if rng.random() < 0.03:
                draft.text = to_traditional(draft.text)
                draft.flags.add("traditional")
            if rng.random() < 0.03:
                draft.text = add_html(draft.text, rng)
                draft.flags.add("html")
            if draft.author is not None and rng.random() < 0.015:
                draft.author = None
                draft.metrics = None
            if rng.random() < 0.01:
                draft.hide_source = True
        self.drafts.append(draft)
        return draft

    # -- one post per slot ---------------------------------------------------------

    def background_post(self, second: int, seq: int) -> Draft:
        """Create one ordinary (non-incident) post."""
        rng = self.rng
        source = _weighted(rng, BACKGROUND_SOURCE_SHARE)
        author = self.authors.active(source)
        sentiment = rng.choices(SENTIMENTS, weights=SENTIMENT_MIX[source])[0]
        if source == "weibo" and rng.random() < 0.05 and self._weibo_recent:
            original = rng.choice(self._weibo_recent)
            if original.author is None or rng.random() < 0.35:
                text = "转发微博"
            else:
                text = f"{rng.choice(REPOST_COMMENTS)}//@{original.author.handle}:{original.text}"
            return self._add(
                Draft(
                    second,
                    seq,
                    "background",
                    source,
                    author,
                    text,
                    original.sentiment,
                    "repost",
                    self._metrics(author),
                )
            )
        roll = rng.random()
        if roll < 0.012:
            text = self.texts.short(sentiment)
            aspect = "short"
        elif roll < 0.0145:
            text, sentiment, aspect = self.texts.symbols(), "neu", "symbols"
        elif roll < 0.0185:
            text, sentiment, aspect = self.texts.recruit(), "neu", "recruit"
        else:
            aspect = _weighted(rng, ASPECT_MIX[source])
            long = (
                source in ("dianping", "xiaohongshu", "heimao") and rng.random() < 0.02
            )
            text = self.texts.background(source, aspect, sentiment, long=long)
            if any(keyword in text for keyword in INCIDENT_KEYWORDS):
                raise AssertionError(
                    f"background text mentions an incident keyword: {text}"
                )
        draft = Draft(
            second,
            seq,
            "background",
            source,
            author,
            text,
            sentiment,
            aspect,
            self._metrics(author),
            customer_tier=self._tier(source, aspect),
        )
        topic = ASPECT_TOPIC.get(aspect)
        if topic and rng.random() < 0.03 and _mentions_topic(text, topic):
            draft.topic = topic
        return self._add(draft)

    def event_post(self, second: int, seq: int) -> Draft:
        """Create one extra post about the promotion."""
        rng = self.rng
        source = _weighted(rng, EVENT_SOURCE_SHARE)
        author = self.authors.active(source)
        sentiment = rng.choices(SENTIMENTS, weights=(0.88, 0.09, 0.03))[0]
        text = self.texts.event(source, sentiment)
        draft = Draft(
            second,
            seq,
            "event",
            source,
            author,
            text,
            sentiment,
            "event",
            self._metrics(author, 1.3),
            customer_tier=self._tier(source, "app"),
        )
        if rng.random() < 0.04:
            draft.topic = "会员活动"
        return self._add(draft)

    def incident_post(self, second: int, seq: int) -> Draft:
        """Create one incident post (complaint, question or repost)."""
        rng = self.rng
        minute = second / 60
        if minute >= NEWS_POST_MIN and self._news is not None and rng.random() < 0.14:
            return self._repost(second, seq, self._news, REPOST_COMMENTS_NEG, "neg")
        if (
            minute >= OFFICIAL_STATEMENT_MIN
            and self._official is not None
            and rng.random() < 0.15
        ):
            comment_sentiment = "neg" if rng.random() < 0.8 else "neu"
            comments = (
                REPOST_COMMENTS_OFFICIAL[:5]
                if comment_sentiment == "neg"
                else REPOST_COMMENTS_OFFICIAL[5:]
            )
            return self._repost(
                second, seq, self._official, comments, comment_sentiment
            )
        if self._incident_weibo and rng.random() < 0.05:
            return self._repost(
                second,
                seq,
                rng.choice(self._incident_weibo),
                REPOST_COMMENTS_NEG,
                "neg",
            )
        source = _weighted(rng, INCIDENT_SOURCE_SHARE)
        author = self.authors.incident(source)
        neutral_share = (
            0.2
            if minute < INCIDENT_ONSET_MIN + 15
            else 0.12
            if minute >= OFFICIAL_STATEMENT_MIN
            else 0.07
        )
        negative = rng.random() >= neutral_share
        text = self.texts.incident(source, minute, negative)
        draft = Draft(
            second,
            seq,
            "incident",
            source,
            author,
            text,
            "neg" if negative else "neu",
            "incident",
            self._metrics(author, 2.5 if negative else 1.2),
            customer_tier=self._tier(source, "service"),
        )
        if rng.random() < 0.03 and negative:
            draft.topic = "空调异味"
        self._add(draft)
        if source == "weibo" and draft.author is not None:
            self._incident_weibo.append(draft)
        return draft

    def _repost(
        self,
        second: int,
        seq: int,
        original: Draft,
        comments: Sequence[str],
        sentiment: str,
    ) -> Draft:
        author = self.authors.incident("weibo")
        assert original.author is not None
        text = f"{self.rng.choice(comments)}//@{original.author.handle}:{original.text}"
        draft = Draft(
            second,
            seq,
            "incident",
            "weibo",
            author,
            text,
            sentiment,
            "repost",
            self._metrics(author, 1.5),
        )
        return self._add(draft)

    def fixed_post(self, fixed: Fixed, seq: int) -> Draft:
        """Create a hand-written post."""
        rng = self.rng
        if fixed.author.startswith("random:"):
            source = fixed.author.split(":", 1)[1]
            author = self.authors.active(source)
        else:
            author = SPECIAL_AUTHORS[fixed.author]
            source = author.source
        if fixed.likes is None:
            metrics = self._metrics(author)
        else:
            metrics = {
                "likes": fixed.likes,
                "reposts": fixed.reposts or 0,
                "followers": author.followers,
            }
        draft = Draft(
            fixed.second,
            seq,
            fixed.kind,
            source,
            author,
            fixed.text,
            fixed.sentiment,
            fixed.kind,
            metrics,
            flags={"fixed"},
        )
        if fixed.author == "星河广场官方" and fixed.kind == "incident":
            self._official = draft
        if fixed.author == "城东晚报":
            self._news = draft
        if fixed.author in REPEAT_COMPLAINERS and rng.random() < 0.5:
            draft.customer_tier = "silver"
        self._add(draft)
        if source == "weibo" and fixed.kind == "incident":
            self._incident_weibo.append(draft)
        return draft

    # -- whole feed -------------------------------------------------------------

    def generate(self) -> list[Draft]:
        """Generate, sort and number every post of the feed."""
        rng = self.rng
        slots: list[tuple[int, int, str, Fixed | None]] = []
        for second in poisson_arrivals(rng, background_rate, 0, DURATION_MIN, 18.0):
            slots.append((second, 1, "background", None))
        for second in poisson_arrivals(
            rng, event_rate, EVENT_START_MIN, EVENT_END_MIN, EVENT_PEAK_RATE
        ):
            slots.append((second, 1, "event", None))
        for second in poisson_arrivals(
            rng, incident_rate, INCIDENT_ONSET_MIN, INCIDENT_END_MIN, INCIDENT_PEAK_RATE
        ):
            slots.append((second, 1, "incident", None))
        for hand_written in FIXED_POSTS:
            slots.append((hand_written.second, 0, "fixed", hand_written))
        slots.sort(key=lambda slot: (slot[0], slot[1]))
        for seq, (second, _, kind, fixed) in enumerate(slots):
            if fixed is not None:
                self.fixed_post(fixed, seq)
            elif kind == "background":
                self.background_post(second, seq)
            elif kind == "event":
                self.event_post(second, seq)
            else:
                self.incident_post(second, seq)
        self.drafts.sort(key=lambda d: (d.second, d.seq))
        for index, draft in enumerate(self.drafts, start=1):
            draft.post_id = f"{ID_PREFIX[draft.source]}-{index:06d}"
        return self.drafts

    def url(self, draft: Draft) -> str | None:
        """Return a plausible link for the post (``None`` for a few)."""
        rng = self.rng
        if rng.random() < 0.03:
            return None
        if draft.source == "weibo":
            if draft.author is None:
                return None
            return f"https://weibo.com/{quote(draft.author.handle, safe='')}/{draft.post_id}"
        if draft.source == "dianping":
            return f"https://www.dianping.com/review/{rng.randrange(10**9, 10**10)}"
        if draft.source == "xiaohongshu":
            return f"https://www.xiaohongshu.com/explore/{rng.getrandbits(96):024x}"
        if draft.source == "douyin":
            return f"https://www.douyin.com/video/74{rng.randrange(10**16, 10**17)}"
        return f"https://tousu.sina.com.cn/complaint/view/{rng.randrange(17 * 10**9, 18 * 10**9)}/"

    def document(self, draft: Draft) -> dict[str, object]:
        """Return the post as written to the feed (post format, field order fixed)."""
        doc: dict[str, object] = {
            "id": draft.post_id,
            "text": draft.text,
            "published_at": draft.when.isoformat(timespec="seconds"),
        }
        if not draft.hide_source:
            doc["source"] = draft.source
        if draft.author is not None:
            doc["author"] = draft.author.handle
        url = self.url(draft)
        if url:
            doc["url"] = url
        if draft.topic:
            doc["topic"] = draft.topic
        if draft.metrics is not None:
            doc["metrics"] = draft.metrics
        if draft.customer_tier:
            doc["customer_tier"] = draft.customer_tier
        return doc


#: Watched-topic keywords used to check a declared ``topic`` against the text.
_TOPIC_KEYWORDS = {
    "星河广场": ("星河广场", "星河商场"),
    "餐饮": (
        "火锅",
        "面馆",
        "小馆",
        "烘焙",
        "小厨",
        "烤肉",
        "糖水",
        "寿司",
        "轻食",
        "砂锅粥",
        "茶事",
        "美食",
    ),
    "停车": ("停车", "车位"),
    "影城": ("影城", "电影", "影厅"),
    "客服": ("客服", "服务台", "退款"),
    "配送": ("星河到家", "配送", "骑手", "送达", "外卖"),
}


def _mentions_topic(text: str, topic: str) -> bool:
    return any(word in text for word in _TOPIC_KEYWORDS[topic])


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def _followers(draft: Draft) -> int:
    return draft.metrics["followers"] if draft.metrics else 0


def _clock(second: int) -> str:
    return (DAY_START + timedelta(seconds=second)).strftime("%H:%M:%S")


def report(drafts: Sequence[Draft], size: int, out: Callable[[str], None]) -> None:
    """Print the ground-truth statistics quoted in samples/README.md."""
    total = len(drafts)
    out(f"posts: {total}   file size: {size} bytes")
    by_source = Counter(d.source for d in drafts)
    out(
        "per source: "
        + ", ".join(f"{s} {by_source[s]}" for s in SOURCES)
        + f"   (source field omitted on {sum(d.hide_source for d in drafts)})"
    )
    by_hour = Counter(d.when.hour for d in drafts)
    out("per hour:   " + ", ".join(f"{h:02d}:00 {by_hour[h]}" for h in sorted(by_hour)))
    kinds = Counter(d.kind for d in drafts)
    out("by kind:    " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    distinct = len({d.text for d in drafts})
    out(f"distinct texts: {distinct} ({distinct / total:.1%})")

    calm = [
        d
        for d in drafts
        if d.kind == "background"
        and not (90 <= d.second / 60 < 120 or 240 <= d.second / 60 < 330)
    ]
    mix = Counter(d.sentiment for d in calm)
    out(
        "sentiment of background posts in calm hours (09:00-10:30, 11:00-13:00, 14:30-15:00): "
        + ", ".join(f"{s} {mix[s] / len(calm):.1%}" for s in SENTIMENTS)
    )
    mix_all = Counter(d.sentiment for d in drafts)
    out(
        "sentiment of all posts: "
        + ", ".join(f"{s} {mix_all[s] / total:.1%}" for s in SENTIMENTS)
    )

    flags = Counter(flag for d in drafts for flag in d.flags)
    long_posts = sum(len(d.text) >= 300 for d in drafts)
    short_posts = sum(len(d.text) <= 2 for d in drafts)
    symbol_posts = sum(
        not re.search(r"[\w\u4e00-\u9fff]", re.sub(r"\[[^\]]*\]", "", d.text))
        for d in drafts
    )
    out(
        f"traditional {flags['traditional']}, html {flags['html']}, 300+ chars {long_posts}, "
        f"<=2 chars {short_posts}, punctuation/emoji only {symbol_posts}, "
        f"customer_tier {sum(d.customer_tier is not None for d in drafts)}, "
        f"topic set {sum(d.topic is not None for d in drafts)}, "
        f"no author {sum(d.author is None for d in drafts)}, no metrics {sum(d.metrics is None for d in drafts)}"
    )
    followers = sorted(d.metrics["followers"] for d in drafts if d.metrics)
    out(
        f"followers: median {followers[len(followers) // 2]}, 90th pct {followers[int(len(followers) * 0.9)]}, "
        f"posts by 10^5+ accounts {sum(f >= 100_000 for f in followers)}"
    )

    incident = [d for d in drafts if d.kind == "incident"]
    out(
        f"incident posts: {len(incident)} "
        f"(first {_clock(incident[0].second)}, last {_clock(incident[-1].second)}); "
        + "sentiment "
        + ", ".join(
            f"{s} {v}"
            for s, v in sorted(Counter(d.sentiment for d in incident).items())
        )
        + "; sources "
        + ", ".join(
            f"{s} {v}" for s, v in sorted(Counter(d.source for d in incident).items())
        )
        + f"; reposts {sum(d.aspect == 'repost' for d in incident)}"
        + f"; by 10^5+ accounts {sum(_followers(d) >= 100_000 for d in incident)}"
    )
    per_minute = Counter(d.second // 60 for d in incident)
    peak_minute, peak_count = max(sorted(per_minute.items()), key=lambda item: item[1])
    out(f"incident peak minute: {_clock(peak_minute * 60)[:5]} with {peak_count} posts")
    for start in range(INCIDENT_ONSET_MIN - 5, INCIDENT_END_MIN + 5, 10):
        row = " ".join(f"{per_minute[m]:2d}" for m in range(start, start + 10))
        out(f"  incident per minute {_clock(start * 60)[:5]}: {row}")
    per_5 = Counter(d.second // 300 for d in incident)
    out(
        "incident per 5 minutes: "
        + ", ".join(f"{_clock(k * 300)[:5]} {v}" for k, v in sorted(per_5.items()))
    )

    ac_background = [d for d in drafts if d.kind == "ac_background"]
    out(f"non-incident posts with 空调异味 keywords: {len(ac_background)}")
    for d in ac_background:
        out(f"  {d.post_id} {_clock(d.second)} {d.sentiment} {d.text.splitlines()[0]}")

    for handle in REPEAT_COMPLAINERS:
        posts = [
            d for d in incident if d.author is not None and d.author.handle == handle
        ]
        span = (posts[-1].second - posts[0].second) / 60
        out(
            f"repeat complainer {handle} ({posts[0].source}): {len(posts)} posts in {span:.1f} min: "
            + ", ".join(f"{d.post_id}@{_clock(d.second)}" for d in posts)
        )
    incident_authors = Counter(
        d.author.handle for d in incident if d.author is not None
    )
    others = {
        a: n
        for a, n in incident_authors.items()
        if n > 1 and a not in REPEAT_COMPLAINERS
    }
    out(f"other authors with 2+ incident posts: {others or 'none'}")

    event = [d for d in drafts if d.kind in ("event", "event_ad")]
    event_mix = Counter(d.sentiment for d in event)
    out(
        f"positive event posts: {len(event)} (first {_clock(event[0].second)}, last {_clock(event[-1].second)}); "
        + ", ".join(f"{s} {event_mix[s]}" for s in SENTIMENTS)
    )
    per_5 = Counter(d.second // 300 for d in event)
    out(
        "event per 5 minutes: "
        + ", ".join(f"{_clock(k * 300)[:5]} {v}" for k, v in sorted(per_5.items()))
    )
    background_10 = Counter(d.second // 300 for d in drafts)
    out(
        "all posts per 5 minutes 10:00-11:30: "
        + ", ".join(f"{_clock(k * 300)[:5]} {background_10[k]}" for k in range(12, 30))
    )


def check(drafts: Sequence[Draft], docs: Sequence[dict[str, object]]) -> None:
    """Fail loudly if the feed breaks its own guarantees."""
    ids = [doc["id"] for doc in docs]
    assert len(set(ids)) == len(ids), "duplicate ids"
    stamps = [str(doc["published_at"]) for doc in docs]
    assert stamps == sorted(stamps), "not sorted by published_at"
    assert all(stamp.endswith("+08:00") for stamp in stamps)
    for d in drafts:
        if d.kind == "incident":
            assert INCIDENT_ONSET_MIN * 60 <= d.second < INCIDENT_END_MIN * 60, d
        mentions = any(
            k in d.text or to_traditional(k) in d.text for k in INCIDENT_KEYWORDS
        )
        assert mentions == (d.kind in ("incident", "ac_background")), d.text


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the feed and print its statistics to stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"random seed (default {SEED})"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).with_name("feed.jsonl"),
        help="where to write the feed",
    )
    args = parser.parse_args(argv)

    generator = FeedGenerator(args.seed)
    drafts = generator.generate()
    docs = [generator.document(d) for d in drafts]
    check(drafts, docs)
    payload = "".join(
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
        for doc in docs
    )
    args.output.write_text(payload, encoding="utf-8")
    print(f"wrote {args.output} (seed {args.seed})", file=sys.stderr)
    report(
        drafts, len(payload.encode("utf-8")), lambda line: print(line, file=sys.stderr)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
