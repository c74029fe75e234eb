"""Import files (docs/contracts.md "Store import"): CSV in three encodings, JSON Lines, values."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbot.store.importfile import ImportFileError, iter_import_rows, read_import_file
from parsers.values import parse_amount, parse_date, parse_datetime

KEY = "Z28YUE4J3Bux"
KEY2 = "Qp7Rt2Wx9Lmn"
ISSUER = "〇〇県広域水道企業団"
CONTRACTOR = "〇〇建設 株式会社"
PROJECT = "〇〇浄水場△△修繕工事"
HEADER = "保証契約番号,認証キー,商品名,発注者名,請負契約者,工事名"
ROW = f"35075-00001M,{KEY},前払金保証,{ISSUER},{CONTRACTOR},{PROJECT}"
TOKYO = ZoneInfo("Asia/Tokyo")


def write(tmp_path: Path, text: str, name: str = "import.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ImportFileError) as info:
        read_import_file(path)
    return info.value.errors


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    "text",
    ["2026-07-01", "2026/07/01", "2026/7/1", "20260701", "2026年7月1日", "令和8年7月1日",
     "R8.7.1", "R8/7/1", "R08.07.01", "令和８年７月１日", " 令和 8 年 7 月 1 日 ", "r8.7.1",
     "令和8年7月1日（水）"],
)
def test_date_forms(text):
    assert parse_date(text) == date(2026, 7, 1)


def test_era_boundaries():
    assert parse_date("令和元年5月1日") == date(2019, 5, 1)
    assert parse_date("H31.4.30") == parse_date("平成31年4月30日") == date(2019, 4, 30)
    assert parse_date("S64.1.7") == date(1989, 1, 7)
    assert parse_date("H1.1.8") == date(1989, 1, 8)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("令和元年4月1日", "before the start of 令和"), ("平成31年5月1日", "after the end of 平成"),
     ("2026/2/30", "no such date"), ("R0.1.1", "no year 0"), ("来週", "not a date"),
     ("令和8年7月1日(月)", "水曜日"), ("", "empty")],
)
def test_bad_dates(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(text)


@pytest.mark.parametrize(
    "text",
    ["2023/10/31 13:15", "2023-10-31T13:15:00", "令和5年10月31日 13:15", "令和5年10月31日13時15分",
     "２０２３／１０／３１　１３：１５", "2023-10-31T04:15:00Z", "2023-10-31 13:15+09:00"],
)
def test_datetime_forms_are_tokyo_time(text):
    value = parse_datetime(text)
    assert value == datetime(2023, 10, 31, 13, 15, tzinfo=TOKYO)
    assert value.tzinfo == TOKYO


def test_datetime_seconds_and_errors():
    assert parse_datetime("2023/10/31 13:15:42").second == 42
    with pytest.raises(ValueError, match="time is expected"):
        parse_datetime("2023/10/31")
    with pytest.raises(ValueError, match="no such time"):
        parse_datetime("2023/10/31 24:30")


@pytest.mark.parametrize(
    ("text", "yen"),
    [("20,000,000", 20_000_000), ("20,000,000円", 20_000_000), ("２０，０００，０００円", 20_000_000),
     ("¥20,000,000", 20_000_000), ("\\20,000,000", 20_000_000), ("￥20,000,000", 20_000_000),
     ("20000000", 20_000_000), ("2,000万円", 20_000_000), ("1億2,000万円", 120_000_000),
     ("1.5億円", 150_000_000), ("金20,000,000円也", 20_000_000), ("0", 0)],
)
def test_amount_forms(text, yen):
    assert parse_amount(text) == yen


@pytest.mark.parametrize(
    "text", ["-1", "△500", "100.5", "2,00,0", "円", "1億20000万", "abc", ""]
)
def test_bad_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_encodings(tmp_path, encoding):
    path = write(tmp_path, f"{HEADER}\r\n{ROW}\r\n", encoding=encoding)
    [event] = read_import_file(path)
    assert event.guarantee_number == "35075-00001M"
    assert event.auth_key == KEY
    assert (event.kind, event.issuer, event.contractor) == ("前払金保証", ISSUER, CONTRACTOR)
    assert event.project_name == PROJECT
    assert event.event == "new" and event.low_bid is False
    assert event.source == f"{path}:2"


def test_cp932_with_nec_characters(tmp_path):
    row = ROW.replace(CONTRACTOR, "㈱〇〇建設")
    path = write(tmp_path, f"{HEADER}\n{row}\n", encoding="cp932")
    [event] = read_import_file(path)
    assert event.contractor == "(株)〇〇建設"  # NFKC, as everywhere else


def test_undecodable_file_names_byte_offset(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(HEADER.encode() + b"\n35075-00001M,\xff\xfe\x80\n")
    [message] = errors_of(path)
    assert str(path) in message and "offset" in message and "cp932" in message


def test_headers_in_any_order_full_width_and_spaced_with_all_optional_columns(tmp_path):
    header = ("工事名, 請負金額 ,保証金額,ＪＶ名,保証契約番号,商品名,認証キー,発注者名,請負契約者,"
              "工期開始,工期終了,保証期限,請負契約日,落札日,預託金融機関,保証事業会社,"
              "電子保証発行日時,対象,変更番号,低入札")
    row = (f'{PROJECT},"２０，０００，０００円","1億2,000万円",〇〇・△△特定建設工事共同企業体,'
           f"３５０７５－００００１Ｍ,前払金保証,{KEY},{ISSUER},{CONTRACTOR},"
           "令和元年5月7日,R8.3.31,令和８年３月３１日,2019/5/1,20190425,〇〇銀行 △△支店,"
           "東日本建設業保証株式会社,2019/05/07 13:15,変更,2,はい")
    [event] = read_import_file(write(tmp_path, f"{header}\n{row}\n"))
    assert event.guarantee_number == "35075-00001M"
    assert (event.contract_amount, event.guaranteed_amount) == (20_000_000, 120_000_000)
    assert (event.term_start, event.term_end) == (date(2019, 5, 7), date(2026, 3, 31))
    assert event.expires_on == date(2026, 3, 31)
    assert (event.contract_date, event.awarded_on) == (date(2019, 5, 1), date(2019, 4, 25))
    assert event.issued_at == datetime(2019, 5, 7, 13, 15, tzinfo=TOKYO)
    assert (event.event, event.change_no, event.low_bid) == ("amendment", 2, True)
    assert event.bank == "〇〇銀行 △△支店" and event.jv_name.startswith("〇〇・△△")


def test_quoted_multiline_cell_keeps_line_numbers(tmp_path):
    rows = [f'35075-00001M,{KEY},前払金保証,{ISSUER},{CONTRACTOR},"〇〇浄水場\n△△修繕工事"',
            ROW.replace("00001M", "00002M").replace("前払金保証", "契約保証")]
    events = read_import_file(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert [e.source.rsplit(":", 1)[1] for e in events] == ["2", "4"]
    assert [e.kind for e in events] == ["前払金保証", "契約保証"]


def test_blank_rows_skipped_and_file_order_kept(tmp_path):
    text = f"{HEADER}\n{ROW}\n,,,,,\n\n{ROW.replace('00001M', '00002M')}\n"
    events = read_import_file(write(tmp_path, text))
    assert [e.guarantee_number for e in events] == ["35075-00001M", "35075-00002M"]
    assert events[1].source.endswith(":5")


def test_unknown_header_is_named(tmp_path):
    messages = errors_of(write(tmp_path, f"{HEADER},備考\n{ROW},メモ\n"))
    assert len(messages) == 1 and "line 1" in messages[0] and "'備考'" in messages[0]


def test_missing_required_header_is_named(tmp_path):
    header = HEADER.replace(",工事名", "")
    row = ROW.rsplit(",", 1)[0]
    [message] = errors_of(write(tmp_path, f"{header}\n{row}\n"))
    assert "missing required column" in message and "工事名" in message


def test_missing_header_row_does_not_echo_key(tmp_path):
    messages = errors_of(write(tmp_path, f"{ROW}\n"))
    assert "header row missing" in messages[0] and "missing required column" in messages[1]
    assert all(KEY not in m for m in messages)


def test_every_bad_row_listed_with_line_and_column_and_no_key(tmp_path):
    rows = [
        ROW,
        ROW.replace("35075-00001M", "35075/00001M"),
        ROW.replace(KEY, KEY[:5] + "!" + KEY[6:]),
        ROW.replace("前払金保証", "前払金"),
        ROW.replace(KEY, ""),
        f"35075-00009M,{KEY},契約保証,,{CONTRACTOR},{PROJECT}",
    ]
    header = HEADER + ",保証期限,請負金額"
    text = header + "\n" + "\n".join(r + ",令和元年4月1日,-5" for r in rows) + "\n"
    path = write(tmp_path, text)
    messages = errors_of(path)
    joined = "\n".join(messages)
    assert KEY not in joined and KEY[:5] + "!" not in joined
    assert f"{path}: line 2, column 保証期限: before the start of 令和 (2019-05-01)" in joined
    assert f"{path}: line 2, column 請負金額: negative amount" in joined
    assert f"{path}: line 3, column 保証契約番号: not a valid 保証契約番号" in joined
    assert f"{path}: line 4, column 認証キー: not a valid 認証キー" in joined
    assert f"{path}: line 5, column 商品名: not one of 前払金保証" in joined
    assert f"{path}: line 6, column 認証キー: empty, but required on a 新規 row" in joined
    assert f"{path}: line 7, column 発注者名: empty, but required" in joined
    assert len(messages) == 6 * 2 + 5


def test_key_looking_value_in_another_column_is_not_echoed(tmp_path):
    row = ROW.replace("35075-00001M", KEY2)
    [message] = errors_of(write(tmp_path, f"{HEADER}\n{row}\n"))
    assert KEY2 not in message and "column 保証契約番号" in message


def test_error_list_is_capped(tmp_path):
    rows = [ROW.replace("前払金保証", "保証") for _ in range(60)]
    messages = errors_of(write(tmp_path, HEADER + "\n" + "\n".join(rows)))
    assert len(messages) == 51 and messages[-1] == "… and 10 more"


def test_amendment_and_cancellation_may_leave_columns_empty(tmp_path):
    header = HEADER + ",対象,請負金額"
    rows = [f"{ROW},新規,10000000",
            "35075-00001M,,,,,,変更,12000000",
            f"35075-00001M,{KEY2},,,,〇〇浄水場△△修繕工事（その2）,訂正,",
            "35075-00001M,,,,,,取消,",
            "35075-00001M,not a key!,,,,,取消,"]
    events = read_import_file(write(tmp_path, header + "\n" + "\n".join(rows) + "\n"))
    assert [e.event for e in events] == ["new", "amendment", "correction", "cancellation"] + [
        "cancellation"]
    assert events[1].auth_key is None and events[1].contract_amount == 12_000_000
    assert events[1].kind is None and events[1].issuer is None and events[1].low_bid is None
    assert events[0].low_bid is False
    assert events[2].auth_key == KEY2 and events[2].project_name.endswith("(その2)")
    assert events[3].auth_key is None and events[4].auth_key is None


def test_number_required_even_on_cancellation_and_bad_event_word(tmp_path):
    header = HEADER + ",対象,変更番号,低入札"
    rows = [",,,,,,取消,,", f"{ROW},削除,,", f"{ROW},変更,0,たぶん"]
    messages = errors_of(write(tmp_path, header + "\n" + "\n".join(rows) + "\n"))
    assert messages[0].endswith("line 2, column 保証契約番号: empty, but required")
    assert "line 3, column 対象: not one of 新規, 変更, 訂正, 取消: '削除'" in messages[1]
    assert "line 4, column 変更番号: must be 1 or more" in messages[2]
    assert "line 4, column 低入札: expected はい/いいえ" in messages[3]


def test_progress_reports_bytes_up_to_the_file_size(tmp_path):
    path = write(tmp_path, f"{HEADER}\n{ROW}\n{ROW}\n", encoding="cp932")
    seen: list[int] = []
    rows = list(iter_import_rows(path, seen.append))
    assert len(rows) == 2 and seen == sorted(seen) and seen[-1] == path.stat().st_size


# ---------------------------------------------------------------- JSON Lines


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "guarantee_number": "35075-00001M", "auth_key": KEY, "kind": "中間前払金保証",
        "issuer": "〇〇市", "contractor": CONTRACTOR, "project_name": PROJECT,
    }
    return {k: v for k, v in (base | changes).items() if v is not ...}


def write_jsonl(tmp_path: Path, *records: object) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return write(tmp_path, "\n".join(lines) + "\n", name="import.jsonl")


def test_jsonl_reads_code_names_numbers_and_event_words(tmp_path):
    path = write_jsonl(
        tmp_path,
        record(contract_amount=20000000, guaranteed_amount="２，０００万円", low_bid=True,
               expires_on="R8.7.1", issued_at="2023-10-31T13:15:00"),
        "",
        record(event="amendment", auth_key=None, kind=None, change_no=1, contract_amount=2.1e7),
        record(event="取消", auth_key=..., issuer=..., contractor=..., kind=...),
    )
    first, second, third = read_import_file(path)
    assert (first.contract_amount, first.guaranteed_amount) == (20_000_000, 20_000_000)
    assert first.low_bid is True and first.expires_on == date(2026, 7, 1)
    assert first.issued_at == datetime(2023, 10, 31, 13, 15, tzinfo=TOKYO)
    assert (second.event, second.change_no, second.auth_key) == ("amendment", 1, None)
    assert second.contract_amount == 21_000_000 and second.source == f"{path}:3"
    assert third.event == "cancellation"


def test_jsonl_errors_name_key_and_line(tmp_path):
    path = write_jsonl(
        tmp_path,
        '{"guarantee_number": "35075-00001M", ',
        record(memo="x"),
        record(auth_key="short"),
        record(contract_amount=1.5, low_bid="maybe", issuer=["〇〇市"]),
        record(project_name=...),
        "[1, 2]",
    )
    messages = errors_of(path)
    assert messages[0].startswith(f"{path}: line 1: not valid JSON (")
    assert messages[1] == f"{path}: line 2, column 'memo': unknown key"
    assert messages[2] == (f"{path}: line 3, column auth_key: "
                           "not a valid 認証キー (8–32 ASCII letters and digits expected)")
    assert "line 4, column issuer: expected a string, not a JSON array" in messages[3]
    assert "line 4, column contract_amount: not a whole number of yen" in messages[4]
    assert "line 4, column low_bid: expected はい/いいえ" in messages[5]
    assert messages[6] == f"{path}: line 5, column project_name: empty, but required on a 新規 row"
    assert messages[7] == f"{path}: line 6: not a JSON object"
    assert all("short" not in m for m in messages)
