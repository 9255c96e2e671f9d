"""SMS: Alibaba Cloud SendSms signing, the HTTP gateway, texts, per-recipient limits."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.channels import check_channel_settings
from monitor.config.rules import Channel
from monitor.errors import ConfigError
from monitor.sinks.notifiers.notifier import (
    HourlyRecipients,
    Notifier,
    _redact,
    recipient_digest,
)
from monitor.sinks.notifiers.payloads import DeliveryError
from monitor.sinks.notifiers.sms import (
    DEFAULT_MAX_CHARS,
    aliyun_request,
    aliyun_signature,
    cap_text,
    check_aliyun_reply,
    check_gateway_reply,
    clean_text,
    gateway_request,
    mask_mobile,
    percent_encode,
    segments,
    sms_text,
    string_to_sign,
)

#: The worked example of Alibaba Cloud's SMS signature document (中文版
#: "签名机制", help.aliyun.com document 101343): a GET of SendSms signed with
#: AccessKeySecret ``testSecret``.
DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D"
    "%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1"
    "%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8"
    "%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466"
    "%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007"
    "%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)
DOC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="

ALIYUN = {
    "access_key_id": "LTAIexample",
    "access_key_secret": "s3cr3t-key",
    "sign_name": "舆情监控",
    "template_code": "SMS_123456789",
}
FIELDS = {
    "text": "[P1] 新工单 T-1 空调异味",
    "ticket": "T-1",
    "priority": "P1",
    "kind": "新工单",
    "topic": "空调异味",
    "rule": "负面声量",
    "owner": "王工",
}


def test_the_signature_matches_the_documents_worked_example() -> None:
    assert string_to_sign("GET", DOC_PARAMS) == DOC_STRING_TO_SIGN
    assert aliyun_signature("testSecret", "GET", DOC_PARAMS) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~-_.", "~-_."),
        ("+", "%2B"),
        ("/", "%2F"),
        ('"', "%22"),
        ("阿", "%E9%98%BF"),
    ],
)
def test_percent_encoding_follows_the_rpc_rules(text: str, encoded: str) -> None:
    assert percent_encode(text) == encoded


def test_a_sendsms_post_carries_a_signature_the_server_can_recompute() -> None:
    url, body, headers = aliyun_request(
        ALIYUN, "13800000001", FIELDS, now=1_700_000_000, nonce="n-1", out_id="d@x"
    )
    assert url == "https://dysmsapi.aliyuncs.com/"
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = params.pop("Signature")
    assert signature == aliyun_signature("s3cr3t-key", "POST", params)
    assert params["Action"] == "SendSms" and params["Version"] == "2017-05-25"
    assert params["PhoneNumbers"] == "13800000001" and params["OutId"] == "d@x"
    assert params["Timestamp"] == "2023-11-14T22:13:20Z"
    assert json.loads(params["TemplateParam"]) == {"content": FIELDS["text"]}
    assert "s3cr3t-key" not in body.decode()


def test_template_params_map_variables_to_fields() -> None:
    settings_ = {**ALIYUN, "template_params": {"no": "ticket", "level": "priority"}}
    _, body, _ = aliyun_request(settings_, "13800000001", FIELDS, now=0, nonce="n")
    params = dict(parse_qsl(body.decode()))
    assert json.loads(params["TemplateParam"]) == {"no": "T-1", "level": "P1"}


def test_the_reply_code_decides() -> None:
    check_aliyun_reply(200, '{"Code":"OK","Message":"OK","BizId":"1"}')
    with pytest.raises(DeliveryError) as throttled:
        check_aliyun_reply(200, '{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"x"}')
    assert throttled.value.retryable
    with pytest.raises(DeliveryError) as refused:
        check_aliyun_reply(200, '{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"x"}')
    assert not refused.value.retryable
    with pytest.raises(DeliveryError) as down:
        check_aliyun_reply(503, "busy")
    assert down.value.retryable
    with pytest.raises(DeliveryError) as signature:
        check_aliyun_reply(400, '{"Code":"SignatureDoesNotMatch","Message":"x"}')
    assert not signature.value.retryable


def test_the_gateway_body_is_templated_and_signed() -> None:
    settings_ = {
        "url": "http://127.0.0.1/sms",
        "secret": "gw-secret",
        "body": {"to": "{mobile}", "msg": "{text}", "meta": {"id": "{delivery_id}"}},
    }
    fields = {**FIELDS, "text": "含{mobile}的文本"}
    url, body, headers = gateway_request(
        settings_, "13800000001", fields, now=1000, delivery_id="T-1#n1@sms"
    )
    assert url == "http://127.0.0.1/sms"
    assert json.loads(body) == {
        "to": "13800000001",
        "msg": "含{mobile}的文本",  # a placeholder inside a value stays as it is
        "meta": {"id": "T-1#n1@sms"},
    }
    expected = hmac.new(b"gw-secret", b"1000." + body, hashlib.sha256).hexdigest()
    assert headers["X-Monitor-Signature"] == f"sha256={expected}"
    assert headers["X-Monitor-Delivery"] == "T-1#n1@sms"
    check_gateway_reply(204, "")
    with pytest.raises(DeliveryError) as failed:
        check_gateway_reply(429, "slow down")
    assert failed.value.retryable


def test_the_gateway_default_body() -> None:
    _, body, headers = gateway_request(
        {"url": "http://x/"}, "13800000001", FIELDS, now=1, delivery_id="d"
    )
    assert json.loads(body) == {"mobile": "13800000001", "text": FIELDS["text"]}
    assert "X-Monitor-Signature" not in headers


@settings(max_examples=300, deadline=None)
@given(
    title=st.text(max_size=600),
    owner=st.none() | st.text(max_size=40),
    link=st.none() | st.just("https://ops.example/console/tickets/T-1"),
    max_chars=st.integers(min_value=20, max_value=500),
)
def test_an_sms_text_fits_its_cap_and_has_no_control_characters(
    title: str, owner: str | None, link: str | None, max_chars: int
) -> None:
    text = sms_text(title, owner, link, max_chars)
    assert len(text) <= max_chars
    assert not any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for char in text)
    assert "\u202e" not in text and "\u200b" not in text  # format characters
    if max_chars == DEFAULT_MAX_CHARS:
        assert segments(text) <= 3


def test_segments_and_the_default_cap() -> None:
    assert segments("字" * 70) == 1
    assert segments("字" * 71) == 2
    assert segments("字" * 201) == 3
    assert DEFAULT_MAX_CHARS == 201
    long = cap_text("告警" * 200)
    assert len(long) == 201 and long.endswith("…")


def test_the_link_stays_whole_and_the_title_is_cut() -> None:
    link = "https://ops.example/console/tickets/T-1"
    text = sms_text("很长的标题" * 80, "王工", link)
    assert text.endswith(" 负责人:王工 " + link)
    assert len(text) <= 201


def test_clean_text_drops_markup_controls() -> None:
    assert clean_text("a\x00b\x1b[31mc\u202ed\n\ne") == "ab[31mcd e"


def test_per_recipient_limit_slides_over_an_hour() -> None:
    now = [0.0]
    limit = HourlyRecipients(2, clock=lambda: now[0])
    for _ in range(2):
        assert limit.allows("13800000001")
        limit.take("13800000001")
    assert not limit.allows("13800000001")
    assert limit.allows("13800000002"), "each mobile has its own count"
    now[0] = 3599.0
    assert not limit.allows("13800000001")
    now[0] = 3600.0
    assert limit.allows("13800000001")


def test_mobiles_are_masked_in_logs() -> None:
    assert mask_mobile("13812345678") == "138****5678"


@pytest.mark.parametrize(
    ("kind", "settings_", "problem"),
    [
        ("aliyun_sms", {**ALIYUN, "to": ["not-a-number"]}, "mobile"),
        ("aliyun_sms", {**ALIYUN, "endpoint": "ftp://x"}, "endpoint"),
        ("aliyun_sms", {**ALIYUN, "template_params": {"a": "secret"}}, "template"),
        ("aliyun_sms", {**ALIYUN, "max_chars": 5}, "max_chars"),
        ("aliyun_sms", {**ALIYUN, "per_recipient_per_hour": 0}, "per_recipient"),
        ("aliyun_sms", {"access_key_id": "x"}, "needs"),
        ("http_sms", {"url": "http://x/", "body": "text"}, "body"),
        ("http_sms", {"url": "http://x/", "to": []}, "to"),
    ],
)
def test_sms_channel_settings_are_checked(
    kind: str, settings_: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        check_channel_settings(kind, settings_)


def test_good_sms_channel_settings_pass() -> None:
    checked = check_channel_settings(
        "aliyun_sms",
        {**ALIYUN, "to": ["+8613800000001"], "max_chars": "140", "timeout": "5s"},
    )
    assert checked["max_chars"] == 140 and checked["timeout"] == 5.0
    assert check_channel_settings("http_sms", {"url": "https://gw.example/send"})


def test_secrets_never_reach_an_error_text() -> None:
    settings_ = {**ALIYUN, "endpoint": "https://sms.internal/?token=abc"}
    text = _redact(
        "failed at https://sms.internal/?token=abc with s3cr3t-key LTAIexample",
        settings_,
    )
    assert "abc" not in text and "s3cr3t-key" not in text
    assert "LTAIexample" not in text


def test_a_missing_secret_reference_names_the_variable_only() -> None:
    channel = Channel(
        "sms",
        "aliyun_sms",
        {**ALIYUN, "access_key_secret": "${ALERT_SMS_SECRET}"},
    )
    with pytest.raises(ConfigError) as error:
        Notifier({"sms": channel}, {})
    assert "ALERT_SMS_SECRET" in str(error.value)


def test_a_recipient_digest_names_one_mobile_of_one_delivery_only() -> None:
    one = recipient_digest("T-1#n1@ops-sms", "13800138001")
    assert one == recipient_digest("T-1#n1@ops-sms", "13800138001")
    assert one != recipient_digest("T-1#n1@ops-sms", "13800138002")
    assert one != recipient_digest("T-1#n2@ops-sms", "13800138001")
    assert "13800138001" not in one and "38001" not in one and len(one) == 16
