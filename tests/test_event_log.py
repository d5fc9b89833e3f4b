"""The per-session replay log behind `Last-Event-ID`: what it replays, what it drops, and when it says so."""

from __future__ import annotations

import pytest

from sessions_app.session.event_log import EventLog, EventsLost, UnknownCursor, event_id, parse_event_id

ROOMY = 1_000_000


def frame(stream: int, seq: int, size: int = 0) -> bytes:
    """A recognisable frame; `size` pads it to exactly that many bytes."""
    text = f"{stream}.{seq};".encode()
    return text.ljust(size, b"x") if size else text


def test_after_returns_only_that_streams_frames_after_the_cursor_in_order() -> None:
    log = EventLog(max_events=100, max_bytes=ROOMY)
    for seq in range(1, 4):
        log.append(1, seq, frame(1, seq))
        log.append(2, seq, frame(2, seq))

    assert list(log.after(1, 0)) == [frame(1, 1), frame(1, 2), frame(1, 3)]
    assert list(log.after(1, 1)) == [frame(1, 2), frame(1, 3)]
    assert list(log.after(2, 2)) == [frame(2, 3)]
    assert list(log.after(2, 3)) == []
    assert list(log.after(7, 0)) == []


def test_after_is_a_snapshot_not_a_live_view() -> None:
    log = EventLog(max_events=100, max_bytes=ROOMY)
    log.append(1, 1, frame(1, 1))
    replay = log.after(1, 0)
    log.append(1, 2, frame(1, 2))

    assert list(replay) == [frame(1, 1)]


def test_length_and_size_track_what_is_held() -> None:
    log = EventLog(max_events=100, max_bytes=ROOMY)
    log.append(1, 1, b"abc")
    log.append(2, 1, b"defgh")

    assert len(log) == 2
    assert log.size_bytes == 8


def test_eviction_by_max_events_drops_the_oldest_first() -> None:
    log = EventLog(max_events=3, max_bytes=ROOMY)
    for seq in range(1, 6):
        log.append(1, seq, frame(1, seq))

    assert len(log) == 3
    assert list(log.after(1, 2)) == [frame(1, 3), frame(1, 4), frame(1, 5)]
    assert log.size_bytes == sum(len(frame(1, seq)) for seq in (3, 4, 5))


def test_eviction_by_max_bytes_drops_the_oldest_until_it_fits() -> None:
    log = EventLog(max_events=100, max_bytes=250)
    for seq in range(1, 4):
        log.append(1, seq, frame(1, seq, size=100))

    # 300 bytes do not fit in 250: the oldest goes, and 200 remain.
    assert len(log) == 2
    assert log.size_bytes == 200
    assert list(log.after(1, 1)) == [frame(1, 2, size=100), frame(1, 3, size=100)]


def test_a_frame_larger_than_max_bytes_is_not_kept() -> None:
    log = EventLog(max_events=100, max_bytes=50)
    log.append(1, 1, frame(1, 1, size=10))
    log.append(1, 2, frame(1, 2, size=60))

    assert len(log) == 0
    assert log.size_bytes == 0
    with pytest.raises(EventsLost):
        log.after(1, 1)


def test_events_lost_when_the_cursors_successors_were_evicted() -> None:
    log = EventLog(max_events=2, max_bytes=ROOMY)
    for seq in range(1, 5):
        log.append(1, seq, frame(1, seq))

    # 1 and 2 were dropped: a client at 0 or 1 missed something the log no longer has.
    with pytest.raises(EventsLost, match=r"^1\.0$"):
        log.after(1, 0)
    with pytest.raises(EventsLost, match=r"^1\.1$"):
        log.after(1, 1)


def test_no_events_lost_when_the_client_already_had_the_evicted_events() -> None:
    log = EventLog(max_events=2, max_bytes=ROOMY)
    for seq in range(1, 5):
        log.append(1, seq, frame(1, seq))

    assert list(log.after(1, 2)) == [frame(1, 3), frame(1, 4)]
    assert list(log.after(1, 4)) == []


def test_eviction_on_one_stream_does_not_lose_another() -> None:
    log = EventLog(max_events=3, max_bytes=ROOMY)
    log.append(2, 1, frame(2, 1))
    log.append(2, 2, frame(2, 2))
    log.append(1, 1, frame(1, 1))
    log.append(1, 2, frame(1, 2))  # evicts 2.1 only

    assert list(log.after(1, 0)) == [frame(1, 1), frame(1, 2)]
    with pytest.raises(EventsLost):
        log.after(2, 0)
    assert list(log.after(2, 1)) == [frame(2, 2)]


def test_clear_empties_the_log_and_forgets_losses() -> None:
    log = EventLog(max_events=1, max_bytes=ROOMY)
    log.append(1, 1, frame(1, 1))
    log.append(1, 2, frame(1, 2))
    log.clear()

    assert len(log) == 0
    assert log.size_bytes == 0
    assert list(log.after(1, 0)) == []


def test_forget_stream_forgets_only_that_streams_losses() -> None:
    log = EventLog(max_events=1, max_bytes=ROOMY)
    log.append(1, 1, frame(1, 1))
    log.append(2, 1, frame(2, 1))
    log.append(3, 1, frame(3, 1))
    log.forget_stream(1)

    assert list(log.after(1, 0)) == []
    with pytest.raises(EventsLost):
        log.after(2, 0)


@pytest.mark.parametrize(("stream", "seq"), [(0, 0), (0, 1), (3, 17), (12345, 987654321)])
def test_event_id_round_trips(stream: int, seq: int) -> None:
    assert parse_event_id(event_id(stream, seq)) == (stream, seq)


def test_event_id_format() -> None:
    assert event_id(3, 17) == "3.17"


def test_parse_event_id_ignores_surrounding_whitespace() -> None:
    assert parse_event_id(" 3.17 ") == (3, 17)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "1",
        ".",
        "1.",
        ".2",
        "a.b",
        "1.b",
        "a.2",
        "1.-2",
        "-1.2",
        "+1.2",
        "1.2.3",
        "1 .2",
        "1. 2",
        "1,2",
        "0x1.2",
        "1.2e3",
        # Characters str.isdigit() accepts but that are not ASCII digits. "\xb2" is what the
        # header byte 0xB2 decodes to under latin-1, so a client can send it.
        "1.\xb2",
        "\xb9.2",
        "\u0661.\u0662",
        # Longer than int() will parse by default (4300 digits).
        "1." + "9" * 5000,
    ],
)
def test_parse_event_id_refuses_malformed_cursors(value: str) -> None:
    with pytest.raises(UnknownCursor):
        parse_event_id(value)
