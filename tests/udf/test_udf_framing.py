"""Length-prefix framing: Go's uvarint, frame splitting, and every way a stream can break."""

from __future__ import annotations

import random

import pytest

from errloop.udf.agent.framing import (
    MAX_FRAME_SIZE,
    FrameDecoder,
    FramingError,
    decode_uvarint,
    encode_uvarint,
    frame,
)


def go_put_uvarint(x: int) -> bytes:
    """Reference: a literal transcription of Go's binary.PutUvarint."""
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0xFF) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**32 - 1])
def test_encode_matches_go_and_round_trips(value: int) -> None:
    encoded = encode_uvarint(value)
    assert encoded == go_put_uvarint(value)
    assert decode_uvarint(encoded + b"tail") == (value, len(encoded))


def test_known_encodings() -> None:
    assert encode_uvarint(300) == b"\xac\x02"
    assert encode_uvarint(1) == b"\x01"


def test_negative_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_uvarint(-1)


def test_decode_needs_more_input_inside_prefix() -> None:
    assert decode_uvarint(b"\xac") is None
    assert decode_uvarint(b"") is None


def test_prefix_wider_than_32_bits_is_rejected() -> None:
    with pytest.raises(FramingError, match="32 bits"):
        decode_uvarint(encode_uvarint(2**32))
    with pytest.raises(FramingError, match="longer than 5 bytes"):
        decode_uvarint(b"\xff\xff\xff\xff\xff\x01")


def test_frames_split_at_every_chunking() -> None:
    rng = random.Random(7)
    bodies = [bytes(rng.randrange(256) for _ in range(n)) for n in (0, 1, 5, 127, 128, 300, 20000)]
    stream = b"".join(frame(b) for b in bodies)
    for _ in range(50):
        decoder = FrameDecoder()
        got: list[bytes] = []
        pos = 0
        while pos < len(stream):
            step = rng.choice((1, 2, 3, 7, 64, 1000, 70000))
            got += decoder.feed(stream[pos : pos + step])
            pos += step
        decoder.finish()
        assert got == bodies
        assert decoder.pending == 0


def test_clean_eof_at_boundary_is_fine() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame(b"abc")) == [b"abc"]
    decoder.finish()  # no exception


def test_eof_inside_body_is_an_error() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame(b"abcdef")[:4]) == []
    with pytest.raises(FramingError, match="expected 3 more bytes"):
        decoder.finish()


def test_eof_inside_prefix_is_an_error() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\xac") == []
    with pytest.raises(FramingError, match="length prefix"):
        decoder.finish()


def test_absurd_size_is_rejected_before_buffering() -> None:
    decoder = FrameDecoder(max_size=1000)
    with pytest.raises(FramingError, match="exceeds the limit"):
        decoder.feed(encode_uvarint(1001) + b"x")
    assert MAX_FRAME_SIZE >= 16 * 1024 * 1024


def test_messages_before_a_broken_prefix_are_delivered_first() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame(b"one") + frame(b"two") + b"\xff" * 6) == [b"one", b"two"]
    with pytest.raises(FramingError, match="longer than 5 bytes"):
        decoder.feed(b"")
    with pytest.raises(FramingError):
        decoder.finish()
