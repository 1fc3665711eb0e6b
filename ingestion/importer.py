"""Import a candle file: check it whole, then add its candles and a record of the import in
one transaction. Importing the same file again adds nothing and succeeds."""

from dataclasses import dataclass
from pathlib import Path

from core.hashing import canonical_json, sha256_hex
from core.timeframes import now_ms
from ingestion.candle_file import Gap, parse_candle_file
from storage.candles import CandleConflictError, CandleStore
from storage.models import CandleImportRow

IMPORT_SOURCE = "import"


@dataclass(frozen=True)
class ImportReport:
    path: str
    symbol: str
    timeframe: str
    file_sha256: str
    rows_in_file: int
    rows_added: int
    rows_already_present: int
    first_open_time: int
    last_open_time: int
    gaps: tuple[Gap, ...]


def import_candle_file(store: CandleStore, path: Path, symbol: str, timeframe: str) -> ImportReport:
    """Add the candles of ``path`` for ``symbol`` and ``timeframe``.

    Raises CandleFileError (row, column, what is wrong) for a malformed file or a row that
    contradicts a stored candle; the database is then left exactly as it was.
    """
    data = path.read_bytes()
    parsed = parse_candle_file(data, symbol, timeframe, IMPORT_SOURCE)
    candles = parsed.candles
    gaps = parsed.gaps()
    with store.session_factory.begin() as session:
        try:
            counts = store.add_candles(session, candles)
        except CandleConflictError as conflict:
            raise parsed.error(conflict.index, conflict.column, str(conflict)) from conflict
        report = ImportReport(
            path=str(path),
            symbol=symbol,
            timeframe=timeframe,
            file_sha256=sha256_hex(data),
            rows_in_file=len(candles),
            rows_added=counts.added,
            rows_already_present=counts.already_present,
            first_open_time=int(candles.open_time[0]),
            last_open_time=int(candles.open_time[-1]),
            gaps=gaps,
        )
        # The import's own row holds what the report says, gaps as JSON, and when it ran.
        columns = {name: value for name, value in vars(report).items() if name != "gaps"}
        session.add(
            CandleImportRow(**columns, gaps=canonical_json(gaps).decode(), imported_at=now_ms())
        )
    return report
