"""The console in real headless Chromium against real workers: sign-in, the
sample incident in the queue with a running SLA clock, acknowledging it from
the page (seen by the API and in the audit trail), a change made through a
second worker appearing live, an API error shown, a viewer without action
buttons, and the same on a 390x844 phone screen. Screenshots are saved in
tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    RESPONDER,
    RESPONDER_NAME,
    VIEWER,
    ApiFailure,
    Console,
    quoted,
)

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def desk(browser: Any, console: Console) -> Iterator[Any]:
    """One desktop page, signed in as the responder, for the module's steps."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def sign_in(page: Any, console: Console, token: str, path: str = "") -> None:
    page.goto(console.url + path)
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("signin-submit").click()
    page.get_by_test_id("me").wait_for()


def row(page: Any, ticket_id: str) -> Any:
    return page.locator(f'[data-testid="ticket-row"][data-ticket-id="{ticket_id}"]')


def clock_runs(clock: Any) -> None:
    first = clock.text_content()
    assert first and any(ch.isdigit() for ch in first), first
    deadline = time.monotonic() + 5
    while clock.text_content() == first:
        assert time.monotonic() < deadline, f"the SLA clock stood still at {first!r}"
        time.sleep(0.2)


def live(page: Any) -> None:
    page.wait_for_selector('[data-testid="live"].live-live')


def test_sign_in_shows_the_incident_in_the_queue_with_a_running_clock(
    desk: Any, console: Console, artifacts: Path
) -> None:
    sign_in(desk, console, RESPONDER)
    assert RESPONDER_NAME in desk.get_by_test_id("me").text_content()
    # The token is kept in the session, never in the address.
    assert RESPONDER not in desk.url
    ticket = row(desk, console.ticket_id)
    ticket.wait_for()
    assert "空调异味" in ticket.text_content()
    assert ticket.get_by_test_id("ticket-status").get_attribute("data-status") == "open"
    clock_runs(ticket.get_by_test_id("sla-clock"))
    live(desk)
    desk.screenshot(path=str(artifacts / "console-queue.png"), full_page=True)


def test_an_api_error_is_shown_to_the_user(desk: Any, console: Console) -> None:
    # What the API answers to a comment without a note, the page must show.
    with pytest.raises(ApiFailure) as refused:
        console.api(
            f"/tickets/{quoted(console.ticket_id)}/actions", {"action": "comment"}
        )
    message = refused.value.body["error"]["message"]
    row(desk, console.ticket_id).locator("a.card-title").click()
    desk.get_by_test_id("actions").wait_for()
    desk.get_by_test_id("action-comment").click()
    desk.get_by_test_id("action-submit").click()
    alert = desk.get_by_test_id("alert")
    alert.wait_for()
    assert alert.get_attribute("data-status") == str(refused.value.status)
    assert message in alert.text_content()


def test_acknowledging_in_the_page_changes_the_api_and_the_audit_trail(
    desk: Any, console: Console, artifacts: Path
) -> None:
    assert f"/console/tickets/{quoted(console.ticket_id)}" in desk.url
    desk.get_by_test_id("series-chart").wait_for()
    desk.get_by_test_id("evidence-post").first.wait_for()
    desk.get_by_test_id("action-acknowledge").click()
    desk.wait_for_selector('[data-testid="ticket-status"][data-status="acknowledged"]')
    desk.wait_for_selector('[data-testid="audit-event"][data-action="acknowledge"]')
    shown = console.api(f"/tickets/{quoted(console.ticket_id)}")
    assert shown["ticket"]["status"] == "acknowledged"
    acks = [e for e in shown["events"] if e["action"] == "acknowledge"]
    assert [e["actor"] for e in acks] == [RESPONDER_NAME]
    # The clock now counts to the resolve deadline.
    clock = desk.locator(".ticket-head").get_by_test_id("sla-clock")
    assert clock.get_attribute("data-due") == shown["ticket"]["resolve_due"]
    clock_runs(clock)
    desk.screenshot(path=str(artifacts / "console-ticket.png"), full_page=True)


def test_a_change_through_the_second_worker_appears_live(
    desk: Any, console: Console, artifacts: Path
) -> None:
    live(desk)
    path = f"/tickets/{quoted(console.ticket_id)}/actions"
    note = "现场确认：三楼新风机组滤网发霉 <b>not bold</b>"
    started = time.monotonic()
    console.api(path, {"action": "start", "note": note}, worker=console.second)
    desk.wait_for_selector('[data-testid="ticket-status"][data-status="in_progress"]')
    seen = time.monotonic() - started
    entry = desk.locator('[data-testid="audit-event"][data-action="start"]')
    entry.wait_for()
    # The note is text, not markup.
    assert note in entry.text_content()
    assert desk.locator(".audit-note b").count() == 0
    print(f"second worker's change shown after {seen:.2f} s")
    # The queue (back in the page, no reload) shows it too.
    desk.get_by_role("link", name="工单队列").click()
    ticket = row(desk, console.ticket_id)
    ticket.wait_for()
    assert (
        ticket.get_by_test_id("ticket-status").get_attribute("data-status")
        == "in_progress"
    )
    console.api(
        path, {"action": "comment", "note": "已通知物业"}, worker=console.second
    )
    desk.get_by_role("link", name="工单队列").click()
    desk.locator(f'a[href$="/tickets/{quoted(console.ticket_id)}"]').first.click()
    desk.wait_for_selector('[data-testid="audit-event"][data-action="comment"]')
    desk.screenshot(path=str(artifacts / "console-live.png"), full_page=True)


def test_the_language_switch(desk: Any, console: Console) -> None:
    desk.get_by_test_id("lang-switch").click()
    desk.locator("[data-nav=queue]").get_by_text("Queue").wait_for()
    assert desk.evaluate("document.documentElement.lang") == "en"
    desk.get_by_test_id("lang-switch").click()
    desk.locator("[data-nav=queue]").get_by_text("工单队列").wait_for()


def test_a_viewer_sees_no_action_buttons(
    browser: Any, console: Console, artifacts: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, console, VIEWER, f"tickets/{quoted(console.ticket_id)}")
        page.get_by_test_id("audit").wait_for()
        assert page.get_by_test_id("actions").count() == 0
        assert page.locator("button[data-action]").count() == 0
        # The API still refuses the viewer.
        with pytest.raises(ApiFailure) as refused:
            console.api(
                f"/tickets/{quoted(console.ticket_id)}/actions",
                {"action": "comment", "note": "x"},
                token=VIEWER,
            )
        assert refused.value.status == 403
    finally:
        context.close()


def test_the_phone_screen(browser: Any, console: Console, artifacts: Path) -> None:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, console, RESPONDER)
        ticket = row(page, console.ticket_id)
        ticket.wait_for()
        clock_runs(ticket.get_by_test_id("sla-clock"))
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "console-phone-queue.png"), full_page=True)
        ticket.locator("a.card-title").click()
        page.get_by_test_id("actions").wait_for()
        assert page.locator("button[data-action]").count() > 0
        page.get_by_test_id("series-chart").wait_for()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        page.screenshot(
            path=str(artifacts / "console-phone-ticket.png"), full_page=True
        )
        # An API error shows on the phone too.
        page.get_by_test_id("action-comment").click()
        page.get_by_test_id("action-submit").click()
        page.get_by_test_id("alert").wait_for()
        assert page.get_by_test_id("alert").get_attribute("data-status") == "422"
        # A change through the second worker appears live.
        live(page)
        console.api(
            f"/tickets/{quoted(console.ticket_id)}/actions",
            {"action": "comment", "note": "手机端实时"},
            worker=console.second,
        )
        page.get_by_text("手机端实时").wait_for()
    finally:
        context.close()
    viewer = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = viewer.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, console, VIEWER, f"tickets/{quoted(console.ticket_id)}")
        page.get_by_test_id("audit").wait_for()
        assert page.locator("button[data-action]").count() == 0
        page.screenshot(
            path=str(artifacts / "console-phone-viewer.png"), full_page=True
        )
    finally:
        viewer.close()
