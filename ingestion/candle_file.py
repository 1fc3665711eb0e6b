"""Candle files, CSV or Arrow/feather, checked in full before anything is written.

A CSV has the header ``timestamp,open,high,low,close,volume`` (ISO-8601 UTC or epoch
milliseconds); a feather file has the same columns, or ``date`` for the time as freqtrade
writes it, as a timestamp type or int64 milliseconds. Rows run oldest first, one per closed
candle, on the timeframe's boundaries. Missing candles between rows are gaps, reported, not
errors.
"""

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.feather

from core.candles import CandleWindow
from core.timeframes import format_timestamp, parse_timestamp, timeframe_ms
from storage.candles import VALUE_COLUMNS

TIME_COLUMNS = ("timestamp", "date")
PRICE_COLUMNS = ("open", "high", "low", "close")
# An Arrow IPC file (feather v2) starts with ARROW1, a feather v1 file with FEA1.
_ARROW_MAGIC = (b"ARROW1", b"FEA1")
# Nanoseconds in each unit an Arrow timestamp column may have: integers keep it exact.
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NS_PER_MS = 1_000_000


class CandleFileError(ValueError):
    """What is wrong in a candle file and where.

    ``row`` is the 1-based data row (0: the header, or the file as a whole when ``column`` is
    None too), ``line`` the CSV line it was read from, ``column`` the column's name as the file
    spells it.
    """

    def __init__(self, row: int, column: str | None, message: str, line: int | None = None) -> None:
        where = f"row {row}" if row else "header" if column else "file"
        if line is not None:
            where += f" (line {line})"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")
        self.row = row
        self.column = column
        self.line = line


class Gap(NamedTuple):
    """``missing`` candles are absent after the one opening at ``after_open_time``."""

    after_open_time: int
    missing: int


@dataclass(frozen=True)
class CandleFile:
    """The candles of a checked file, and where each row came from."""

    candles: CandleWindow
    lines: tuple[int, ...] | None  # the CSV line of each row; None for feather files

    def gaps(self) -> tuple[Gap, ...]:
        times = self.candles.open_time
        steps = np.diff(times) // self.candles.timeframe_ms
        return tuple(
            Gap(after_open_time=int(times[index]), missing=int(steps[index]) - 1)
            for index in np.flatnonzero(steps > 1)
        )

    def error(self, index: int, column: str | None, message: str) -> CandleFileError:
        """An error about the row at 0-based ``index``, e.g. one the database contradicts."""
        return _row_error(self.lines, index, column, message)


class _Columns(NamedTuple):
    """A file's cells before checking: time column name, cells per column, CSV lines."""

    time_column: str
    cells: dict[str, Sequence[object]]
    lines: list[int] | None


def parse_candle_file(data: bytes, symbol: str, timeframe: str, source: str) -> CandleFile:
    """Check every row of ``data`` (CSV or feather, told apart by content) and return its candles.

    Raises CandleFileError naming the first bad row and column, and what is wrong with it.
    """
    step = timeframe_ms(timeframe)
    columns = _read_feather(data) if data.startswith(_ARROW_MAGIC) else _read_csv(data)
    times, values = _check_rows(columns, timeframe)
    return CandleFile(
        candles=CandleWindow(
            symbol=symbol,
            timeframe=timeframe,
            timeframe_ms=step,
            open_time=np.array(times, dtype=np.int64),
            sources=(source,),
            **{name: np.array(values[name], dtype=np.float64) for name in VALUE_COLUMNS},
        ),
        lines=tuple(columns.lines) if columns.lines is not None else None,
    )


def _read_csv(data: bytes) -> _Columns:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CandleFileError(0, None, f"neither feather nor UTF-8 text: {error}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    time_column = _time_column(header)
    positions = {name: header.index(name) for name in (time_column, *VALUE_COLUMNS)}
    cells: dict[str, list[object]] = {name: [] for name in positions}
    lines = []
    for record in reader:
        if not any(field.strip() for field in record):
            continue  # blank lines are not rows
        lines.append(reader.line_num)
        for name, position in positions.items():
            cells[name].append(record[position] if position < len(record) else None)
    return _Columns(time_column, dict(cells), lines)


def _read_feather(data: bytes) -> _Columns:
    try:
        table = pyarrow.feather.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise CandleFileError(0, None, f"not readable as feather: {error}") from None
    time_column = _time_column(table.column_names)
    cells: dict[str, Sequence[object]] = {
        name: table.column(name).to_pylist() for name in VALUE_COLUMNS
    }
    cells[time_column] = _feather_times(table.column(time_column), time_column)
    return _Columns(time_column, cells, None)


def _time_column(header: Sequence[str]) -> str:
    """The name the file gives its time column; every other column must be present too."""
    time_column = next((name for name in TIME_COLUMNS if name in header), TIME_COLUMNS[0])
    for name in (time_column, *VALUE_COLUMNS):
        if name not in header:
            found = ", ".join(header) or "none"
            raise CandleFileError(0, name, f"column {name!r} is missing (columns found: {found})")
    return time_column


def _feather_times(column: pa.ChunkedArray, name: str) -> list[object]:
    """A timestamp-typed column → epoch ms; other types are left to the row checks."""
    if not pa.types.is_timestamp(column.type):
        return list(column.to_pylist())
    # The raw integers count the column's unit since the epoch, UTC whatever the time zone.
    unit = column.type.unit
    times: list[object] = []
    for index, raw in enumerate(column.cast(pa.int64()).to_pylist()):
        if raw is None:
            times.append(None)
            continue
        nanoseconds = raw * _NS_PER_UNIT[unit]
        if nanoseconds % _NS_PER_MS:
            message = f"timestamp {raw} {unit} is not a whole number of milliseconds"
            raise _row_error(None, index, name, message)
        times.append(nanoseconds // _NS_PER_MS)
    return times


class CandleValueError(Exception):
    """What is wrong with one row's values (or time): the column and why. A file turns it into
    a CandleFileError naming the row; other sources report it their own way."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _check_rows(columns: _Columns, timeframe: str) -> tuple[list[int], dict[str, list[float]]]:
    """Every row checked in file order; the first problem found is raised."""
    time_column, cells, lines = columns
    times: list[int] = []
    values: dict[str, list[float]] = {name: [] for name in VALUE_COLUMNS}
    row_of_time: dict[int, int] = {}
    for index, time_cell in enumerate(cells[time_column]):
        try:
            time = _check_time(time_column, time_cell, timeframe, times, row_of_time)
            row = check_candle_values({name: cells[name][index] for name in VALUE_COLUMNS})
        except CandleValueError as problem:
            raise _row_error(lines, index, problem.column, problem.message) from None
        row_of_time[time] = index
        times.append(time)
        for name in VALUE_COLUMNS:
            values[name].append(row[name])
    if not times:
        raise CandleFileError(0, None, "no candle rows")
    return times, values


def _check_time(
    column: str, cell: object, timeframe: str, earlier: list[int], row_of_time: dict[int, int]
) -> int:
    if cell is None or cell == "":
        raise CandleValueError(column, "timestamp is missing")
    if isinstance(cell, bool) or not isinstance(cell, str | int | float):
        raise CandleValueError(column, f"timestamp {cell!r} is not a time")
    try:
        time = parse_timestamp(cell)
    except ValueError as error:
        raise CandleValueError(column, str(error)) from None
    shown = format_timestamp(time)
    if time % timeframe_ms(timeframe):
        raise CandleValueError(column, f"timestamp {shown} is not on a {timeframe} boundary")
    if time in row_of_time:
        raise CandleValueError(column, f"timestamp {shown} repeats row {row_of_time[time] + 1}")
    if earlier and time < earlier[-1]:
        previous = format_timestamp(earlier[-1])
        message = f"timestamp {shown} is before the previous row's {previous} (oldest first)"
        raise CandleValueError(column, message)
    return time


def check_candle_values(cells: Mapping[str, object]) -> dict[str, float]:
    """The five values as numbers, or CandleValueError: each a finite number, prices
    positive, volume not negative, open and close within [low, high]."""
    row = {name: _number(name, cell) for name, cell in cells.items()}
    for name in PRICE_COLUMNS:
        if row[name] <= 0:
            raise CandleValueError(name, f"{name} {row[name]!r} is not positive")
    if row["volume"] < 0:
        raise CandleValueError("volume", f"volume {row['volume']!r} is negative")
    low, high = row["low"], row["high"]
    if high < low:
        raise CandleValueError("high", f"high {high!r} is below low {low!r}")
    for name in ("open", "close"):
        if not low <= row[name] <= high:
            raise CandleValueError(
                name, f"{name} {row[name]!r} is outside [low {low!r}, high {high!r}]"
            )
    return row


def _number(column: str, cell: object) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        raise CandleValueError(column, f"{column} is missing")
    if isinstance(cell, bool) or not isinstance(cell, str | int | float):
        raise CandleValueError(column, f"{column} {cell!r} is not a number")
    try:
        value = float(cell)
    except ValueError:
        raise CandleValueError(column, f"{column} {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise CandleValueError(column, f"{column} {cell!r} is not a finite number")
    return value


def _row_error(
    lines: Sequence[int] | None, index: int, column: str | None, message: str
) -> CandleFileError:
    return CandleFileError(index + 1, column, message, None if lines is None else lines[index])
