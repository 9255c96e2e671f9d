"""Retrying a write until the sink takes it."""

from __future__ import annotations

import pytest

from monitor.errors import SinkUnavailable
from monitor.sinks.retry import backoff_delays, until_written


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the delays instead of sleeping."""
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr("monitor.sinks.retry.asyncio.sleep", fake_sleep)
    return delays


class FlakyWrite:
    """Raises SinkUnavailable with the given retry_after values, then succeeds."""

    def __init__(self, retry_afters: list[float], result: object = "written") -> None:
        self.retry_afters = list(retry_afters)
        self.result = result
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.retry_afters:
            raise SinkUnavailable(
                f"down #{self.calls}", retry_after=self.retry_afters.pop(0)
            )
        return self.result


async def test_returns_first_result_without_waiting(slept: list[float]) -> None:
    write = FlakyWrite([])
    retries: list[tuple[SinkUnavailable, float]] = []
    result = await until_written(
        write, initial=1.0, maximum=10.0, on_retry=lambda e, w: retries.append((e, w))
    )
    assert result == "written"
    assert write.calls == 1
    assert retries == []
    assert slept == []


async def test_retries_after_each_failure_with_max_of_retry_after_and_backoff(
    slept: list[float],
) -> None:
    write = FlakyWrite([0.0, 0.0, 5.0, 0.0, 100.0, 0.0])
    retries: list[tuple[SinkUnavailable, float]] = []
    result = await until_written(
        write, initial=1.0, maximum=10.0, on_retry=lambda e, w: retries.append((e, w))
    )
    assert result == "written"
    assert write.calls == 7
    #   backoff:     1    2    4    8   16->10  32->10
    #   retry_after: 0    0    5    0   100     0
    expected = [1.0, 2.0, 5.0, 8.0, 10.0, 10.0]
    assert slept == expected
    assert [wait for _, wait in retries] == expected
    assert [str(error) for error, _ in retries] == [f"down #{n}" for n in range(1, 7)]


async def test_retry_after_longer_than_backoff_wins(slept: list[float]) -> None:
    write = FlakyWrite([3.0, 3.0])
    await until_written(write, initial=0.5, maximum=30.0)
    assert slept == [3.0, 3.0]


async def test_works_without_on_retry(slept: list[float]) -> None:
    write = FlakyWrite([0.0, 0.0], result=[1, 2])
    assert await until_written(write, initial=0.25, maximum=1.0) == [1, 2]
    assert slept == [0.25, 0.5]


@pytest.mark.parametrize("error", [ValueError("bad document"), KeyError("items")])
async def test_other_exceptions_propagate_at_once(
    slept: list[float], error: Exception
) -> None:
    calls = 0
    retries: list[float] = []

    async def write() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)) as caught:
        await until_written(
            write, initial=1.0, maximum=10.0, on_retry=lambda e, w: retries.append(w)
        )
    assert caught.value is error
    assert calls == 1
    assert retries == []
    assert slept == []


async def test_other_exception_after_retries_propagates(slept: list[float]) -> None:
    attempts = 0

    async def write() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise SinkUnavailable("busy", retry_after=0.0)
        raise RuntimeError("mapping conflict")

    with pytest.raises(RuntimeError, match="mapping conflict"):
        await until_written(write, initial=1.0, maximum=10.0)
    assert attempts == 3
    assert slept == [1.0, 2.0]


@pytest.mark.parametrize(
    ("initial", "maximum", "expected"),
    [
        (0.5, 30.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        (1.0, 5.0, [1.0, 2.0, 4.0, 5.0, 5.0]),
        (2.0, 1.0, [1.0, 1.0]),
        (3.0, 3.0, [3.0, 3.0, 3.0]),
    ],
)
def test_backoff_delays_double_and_cap(
    initial: float, maximum: float, expected: list[float]
) -> None:
    delay = backoff_delays(initial, maximum)
    assert [delay(attempt) for attempt in range(len(expected))] == expected


def test_backoff_delays_stay_capped_for_huge_attempt_numbers() -> None:
    delay = backoff_delays(0.5, 30.0)
    assert delay(10_000) == 30.0
    assert delay(10**9) == 30.0
