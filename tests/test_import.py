"""Candle-file import on real files: all or nothing, idempotent, errors that say where."""

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.feather
import pytest
import sqlalchemy as sa
from conftest import shared_csv

from core.timeframes import parse_timestamp
from ingestion.candle_file import CandleFileError, Gap, parse_candle_file
from ingestion.importer import import_candle_file
from storage.candles import CandleStore
from storage.engine import Database
from storage.models import Base, CandleImportRow

HEADER = "timestamp,open,high,low,close,volume"
COLUMNS = HEADER.split(",")
Row = list[str]


@pytest.fixture
def store(database: Database) -> CandleStore:
    return CandleStore(database.session_factory)


def btc_rows(count: int) -> list[Row]:
    """The first ``count`` data rows of the real BTC/USDT 5m file, as their text cells."""
    lines = shared_csv("BTC_USDT-5m.csv").read_text().splitlines()
    assert lines[0] == HEADER
    return [line.split(",") for line in lines[1 : count + 1]]


def csv_text(rows: list[Row], header: str = HEADER) -> str:
    return "\n".join([header, *(",".join(row) for row in rows)]) + "\n"


def write_csv(path: Path, rows: list[Row], header: str = HEADER) -> Path:
    path.write_text(csv_text(rows, header))
    return path


def btc_columns(count: int) -> tuple[list[int], dict[str, list[float]]]:
    """The first ``count`` BTC rows as epoch-ms times and float columns."""
    rows = btc_rows(count)
    values = {
        name: [float(row[index]) for row in rows]
        for index, name in enumerate(COLUMNS)
        if name != "timestamp"
    }
    return [parse_timestamp(row[0]) for row in rows], values


def write_feather(
    path: Path, time_name: str, times: pa.Array, values: dict[str, list[float]]
) -> Path:
    pyarrow.feather.write_feather(pa.table({time_name: times, **values}), str(path))
    return path


def contents(database: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in key order: equal means the database did not change."""
    with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


# --- the real files -------------------------------------------------------------------------


def test_the_real_btc_file_imports_whole(store: CandleStore) -> None:
    path = shared_csv("BTC_USDT-5m.csv")
    report = import_candle_file(store, path, "BTC/USDT", "5m")

    assert (report.rows_in_file, report.rows_added, report.rows_already_present) == (
        10_999,
        10_999,
        0,
    )
    assert report.first_open_time == parse_timestamp("2023-01-02T16:45:00Z")
    assert report.last_open_time == report.first_open_time + 10_998 * 300_000
    assert report.gaps == ()  # the file is complete
    assert len(report.file_sha256) == 64
    coverage = store.coverage("BTC/USDT", "5m")
    assert coverage is not None
    assert (coverage.count, coverage.missing_bars) == (10_999, 0)
    window = store.window("BTC/USDT", "5m", report.last_open_time + 300_000, 250)
    assert window.close[-1] == float(path.read_text().splitlines()[-1].split(",")[4])
    assert window.sources == ("import",)


def test_importing_the_same_file_twice_adds_nothing_the_second_time(
    database: Database, store: CandleStore
) -> None:
    path = shared_csv("BTC_USDT-5m.csv")
    first = import_candle_file(store, path, "BTC/USDT", "5m")
    candles_after_first = contents(database)["candles"]
    second = import_candle_file(store, path, "BTC/USDT", "5m")

    assert (second.rows_added, second.rows_already_present) == (0, 10_999)
    assert second.file_sha256 == first.file_sha256
    assert contents(database)["candles"] == candles_after_first
    with database.session_factory() as session:
        imports = session.scalars(sa.select(CandleImportRow).order_by(CandleImportRow.id)).all()
    assert [(row.rows_added, row.rows_already_present) for row in imports] == [
        (10_999, 0),
        (0, 10_999),
    ]


def test_the_gaps_of_the_real_xrp_file_are_reported(database: Database, store: CandleStore) -> None:
    report = import_candle_file(store, shared_csv("XRP_ETH-1m.csv"), "XRP/ETH", "1m")

    assert report.rows_added == 2_469
    assert len(report.gaps) == 676
    assert sum(gap.missing for gap in report.gaps) == 1_091
    first = report.gaps[0]
    assert first.missing >= 1
    assert store.window("XRP/ETH", "1m", first.after_open_time + 60_000, 1).open_time[0] == (
        first.after_open_time
    )
    coverage = store.coverage("XRP/ETH", "1m")
    assert coverage is not None
    assert coverage.missing_bars == 1_091
    with database.session_factory() as session:
        stored_gaps = session.scalar(sa.select(CandleImportRow.gaps))
    assert stored_gaps is not None
    assert stored_gaps.startswith(f"[[{first.after_open_time},{first.missing}]")


def test_a_gap_in_a_file_is_reported_not_refused() -> None:
    rows = btc_rows(6)
    del rows[2:4]
    parsed = parse_candle_file(csv_text(rows).encode(), "BTC/USDT", "5m", "import")
    assert parsed.gaps() == (Gap(after_open_time=parse_timestamp(rows[1][0]), missing=2),)


# --- other formats --------------------------------------------------------------------------


def test_epoch_csv_and_feather_files_import_identically(tmp_path: Path, store: CandleStore) -> None:
    rows = btc_rows(30)
    times, values = btc_columns(30)
    iso = write_csv(tmp_path / "iso.csv", rows)
    others = [
        write_csv(
            tmp_path / "spaced.csv",
            [[row[0].replace("T", " ").replace("Z", "+00:00"), *row[1:]] for row in rows],
        ),
        write_csv(
            tmp_path / "epoch.csv",
            [[str(time), *row[1:]] for time, row in zip(times, rows, strict=True)],
        ),
        # freqtrade's layout: a "date" column of UTC timestamps.
        write_feather(
            tmp_path / "freqtrade.feather",
            "date",
            pa.array(times, pa.timestamp("ms", tz="UTC")),
            values,
        ),
        write_feather(
            tmp_path / "nanoseconds.feather",
            "date",
            pa.array([time * 1_000_000 for time in times], pa.timestamp("ns")),
            values,
        ),
        write_feather(
            tmp_path / "int_ms.feather", "timestamp", pa.array(times, pa.int64()), values
        ),
    ]

    reference = parse_candle_file(iso.read_bytes(), "BTC/USDT", "5m", "import").candles
    assert import_candle_file(store, iso, "BTC/USDT", "5m").rows_added == 30
    for path in others:
        parsed = parse_candle_file(path.read_bytes(), "BTC/USDT", "5m", "import").candles
        assert parsed.content_hash() == reference.content_hash(), path.name
        # Any value differing from the stored candles would be a conflict, not "present".
        report = import_candle_file(store, path, "BTC/USDT", "5m")
        assert (report.rows_added, report.rows_already_present) == (0, 30), path.name


def test_a_feather_error_names_row_and_column(tmp_path: Path) -> None:
    times, values = btc_columns(8)
    low = values["low"][4]
    values["high"][4] = low - 1.0
    path = write_feather(
        tmp_path / "bad.feather", "date", pa.array(times, pa.timestamp("ms", tz="UTC")), values
    )
    with pytest.raises(CandleFileError) as caught:
        parse_candle_file(path.read_bytes(), "BTC/USDT", "5m", "import")
    assert (caught.value.row, caught.value.column, caught.value.line) == (5, "high", None)
    assert str(caught.value) == f"row 5, column high: high {low - 1.0!r} is below low {low!r}"


# --- malformed files ------------------------------------------------------------------------

# Data row 17 (line 18) of the BTC file: 2023-01-02T18:05:00Z,16710.1,16710.1,16703.9,16706.3,...
BAD_ROW = 17
Mutation = Callable[[Row], None]


def cell(column: str, text: str) -> Mutation:
    def mutate(row: Row) -> None:
        row[COLUMNS.index(column)] = text

    return mutate


def swap_high_and_low(row: Row) -> None:
    row[2], row[3] = row[3], row[2]


MALFORMED = [
    pytest.param(cell("volume", "NaN"), "volume", "volume 'NaN' is not a finite number", id="nan"),
    pytest.param(cell("close", "inf"), "close", "close 'inf' is not a finite number", id="inf"),
    pytest.param(cell("low", "0"), "low", "low 0.0 is not positive", id="non-positive-price"),
    pytest.param(cell("volume", "-3.5"), "volume", "volume -3.5 is negative", id="negative-volume"),
    pytest.param(
        swap_high_and_low, "high", "high 16703.9 is below low 16710.1", id="high-below-low"
    ),
    pytest.param(
        cell("open", "16720.1"),
        "open",
        "open 16720.1 is outside [low 16703.9, high 16710.1]",
        id="open-outside-range",
    ),
    pytest.param(
        cell("close", "16693.9"),
        "close",
        "close 16693.9 is outside [low 16703.9, high 16710.1]",
        id="close-outside-range",
    ),
    pytest.param(
        cell("timestamp", "2023-01-02T17:00:00Z"),  # row 4's
        "timestamp",
        "timestamp 2023-01-02T17:00:00Z repeats row 4",
        id="duplicate-timestamp",
    ),
    pytest.param(
        cell("timestamp", "2023-01-02T16:40:00Z"),  # before row 1
        "timestamp",
        "timestamp 2023-01-02T16:40:00Z is before the previous row's 2023-01-02T18:00:00Z "
        "(oldest first)",
        id="out-of-order",
    ),
    pytest.param(
        cell("open", "16.7O0.5"), "open", "open '16.7O0.5' is not a number", id="bad-number"
    ),
    pytest.param(cell("high", ""), "high", "high is missing", id="missing-value"),
    pytest.param(
        cell("timestamp", "yesterday"),
        "timestamp",
        "timestamp 'yesterday' is neither ISO-8601 (2023-01-20T12:00:00Z) nor epoch milliseconds",
        id="bad-timestamp",
    ),
    pytest.param(
        cell("timestamp", "2023-01-02T18:06:00Z"),
        "timestamp",
        "timestamp 2023-01-02T18:06:00Z is not on a 5m boundary",
        id="misaligned",
    ),
]


@pytest.mark.parametrize(("mutate", "column", "says"), MALFORMED)
def test_a_malformed_row_is_named_and_nothing_is_written(
    mutate: Mutation,
    column: str,
    says: str,
    tmp_path: Path,
    database: Database,
    store: CandleStore,
) -> None:
    import_candle_file(store, write_csv(tmp_path / "good.csv", btc_rows(20)), "BTC/USDT", "5m")
    before = contents(database)
    rows = btc_rows(40)
    mutate(rows[BAD_ROW - 1])
    bad = write_csv(tmp_path / "bad.csv", rows)

    with pytest.raises(CandleFileError) as caught:
        import_candle_file(store, bad, "BTC/USDT", "5m")

    error = caught.value
    assert (error.row, error.column, error.line) == (BAD_ROW, column, BAD_ROW + 1)
    assert str(error) == f"row {BAD_ROW} (line {BAD_ROW + 1}), column {column}: {says}"
    assert contents(database) == before


def test_a_missing_column_is_named_and_nothing_is_written(
    tmp_path: Path, database: Database, store: CandleStore
) -> None:
    import_candle_file(store, write_csv(tmp_path / "good.csv", btc_rows(20)), "BTC/USDT", "5m")
    before = contents(database)
    no_volume = write_csv(
        tmp_path / "bad.csv",
        [row[:5] for row in btc_rows(40)],
        header="timestamp,open,high,low,close",
    )

    with pytest.raises(CandleFileError) as caught:
        import_candle_file(store, no_volume, "BTC/USDT", "5m")

    assert (caught.value.row, caught.value.column) == (0, "volume")
    assert str(caught.value) == (
        "header, column volume: column 'volume' is missing "
        "(columns found: timestamp, open, high, low, close)"
    )
    assert contents(database) == before


def test_a_file_without_rows_is_refused(tmp_path: Path, store: CandleStore) -> None:
    with pytest.raises(CandleFileError, match="no candle rows"):
        import_candle_file(store, write_csv(tmp_path / "empty.csv", []), "BTC/USDT", "5m")


def test_a_conflicting_overlap_is_refused_naming_the_row(
    tmp_path: Path, database: Database, store: CandleStore
) -> None:
    import_candle_file(store, write_csv(tmp_path / "first.csv", btc_rows(20)), "BTC/USDT", "5m")
    before = contents(database)
    rows = btc_rows(40)
    stored_close = rows[BAD_ROW - 1][4]
    rows[BAD_ROW - 1][4] = rows[BAD_ROW - 1][3]  # the low: still a valid candle, but another one
    overlapping = write_csv(tmp_path / "second.csv", rows)

    with pytest.raises(CandleFileError) as caught:
        import_candle_file(store, overlapping, "BTC/USDT", "5m")

    assert (caught.value.row, caught.value.column, caught.value.line) == (BAD_ROW, "close", 18)
    assert f"already stored with close {float(stored_close)!r}" in str(caught.value)
    assert contents(database) == before
