"""bench/instructions.py counts a real server's instructions under callgrind, per request and era."""

from __future__ import annotations

from pathlib import Path

from bench import instructions, servers
from bench.throughput import ERAS


async def test_the_floor_is_counted_per_era(tmp_path: Path) -> None:
    # The floor starts quickest under valgrind; ours and the reference go through the same code.
    counted = await instructions._count(tmp_path, "floor", servers.floor, requests=5)
    assert set(counted) == set(ERAS)
    for era in ERAS:
        # A request through daphne, Twisted and Channels takes hundreds of thousands of
        # instructions; a count per request off by the request count would be far outside this.
        assert 100_000 < counted[era].instructions < 10_000_000, (era, counted[era])
        assert counted[era].last_level_misses > 0


def test_a_dump_is_read_per_request(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text(
        "# callgrind format\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n"
        "summary: 5000 10 10 7 7 7 20 30 50\n\nfn=(1) main\n1 5000\n"
    )
    counted = instructions._read(dump, requests=10)
    assert counted == instructions.Counted(instructions=500.0, last_level_misses=10.0)
