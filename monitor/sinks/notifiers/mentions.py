"""@mentions of the assignee in DingTalk and Feishu group notices.

Pure functions over the payloads :mod:`.payloads` builds; the notifier
applies them when the rules file's ``personal: chat:`` is on and the
assignee's owners-book entry has a ``dingtalk`` (user id or mobile; the
``mobile`` if not) or ``feishu`` (open_id) contact.

- DingTalk alerts a person only in ``text`` and ``markdown`` messages whose
  ``at`` names them (``atMobiles`` or ``atUserIds``) *and* whose text
  contains ``@<mobile or user id>``; an ``actionCard`` cannot @ anyone, so a
  card becomes ``markdown`` with its buttons as links in the text.
- Feishu: a ``post`` gets a line with an ``at`` element
  (``{"tag": "at", "user_id": <open_id>}``); an ``interactive`` card gets a
  ``lark_md`` element ``<at id=<open_id>></at>``; a ``text`` message gets
  ``<at user_id="<open_id>"></at>``. Ids are checked against
  :data:`SAFE_ID` first, so nothing else reaches the markup.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from monitor.config.channels import MOBILE

#: What a DingTalk user id or a Feishu open_id may look like.
SAFE_ID = re.compile(r"[A-Za-z0-9_\-.$@]{1,64}")


def dingtalk_targets(contacts: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Return ``(mobiles, user_ids)`` to @ for one person's contacts."""
    contact = (contacts.get("dingtalk") or contacts.get("mobile") or "").strip()
    if not contact:
        return [], []
    if MOBILE.fullmatch(contact):
        return [contact], []
    if SAFE_ID.fullmatch(contact):
        return [], [contact]
    return [], []


def feishu_target(contacts: Mapping[str, str]) -> str | None:
    """Return the open_id to @ for one person's contacts, if it is a safe id."""
    contact = (contacts.get("feishu") or "").strip()
    return contact if contact and SAFE_ID.fullmatch(contact) else None


def dingtalk_mention(
    payload: Mapping[str, Any], mobiles: list[str], user_ids: list[str]
) -> dict[str, Any]:
    """Return a DingTalk payload that @s ``mobiles`` and ``user_ids``."""
    result = copy.deepcopy(dict(payload))
    if not mobiles and not user_ids:
        return result
    if result.get("msgtype") == "actionCard":
        card = result["actionCard"]
        links = "".join(
            f"\n\n[{button['title']}]({button['actionURL']})"
            for button in card.get("btns", ())
        )
        result = {
            "msgtype": "markdown",
            "markdown": {"title": card["title"], "text": card["text"] + links},
        }
    names = [*mobiles, *user_ids]
    at = dict(result.get("at") or {})
    known = set(at.get("atMobiles", [])) | set(at.get("atUserIds", []))
    at["atMobiles"] = list(dict.fromkeys([*at.get("atMobiles", []), *mobiles]))
    at["atUserIds"] = list(dict.fromkeys([*at.get("atUserIds", []), *user_ids]))
    at.setdefault("isAtAll", False)
    result["at"] = at
    added = " ".join(f"@{name}" for name in names if name not in known)
    if added:
        if result.get("msgtype") == "markdown":
            result["markdown"]["text"] += "\n\n" + added
        elif result.get("msgtype") == "text":
            result["text"]["content"] += " " + added
    return result


def feishu_mention(
    payload: Mapping[str, Any], open_id: str, name: str = ""
) -> dict[str, Any]:
    """Return a Feishu payload that @s ``open_id`` (unchanged if it is not safe)."""
    result = copy.deepcopy(dict(payload))
    if not SAFE_ID.fullmatch(open_id):
        return result
    kind = result.get("msg_type")
    if kind == "post":
        for body in result["content"]["post"].values():
            element = {"tag": "at", "user_id": open_id}
            if name:
                element["user_name"] = name
            body["content"].append([element])
    elif kind == "interactive":
        result["card"].setdefault("elements", []).append(
            {
                "tag": "div",
                "text": {"tag": "lark_md", "content": f"<at id={open_id}></at>"},
            }
        )
    elif kind == "text":
        result["content"]["text"] += f' <at user_id="{open_id}"></at>'
    return result
