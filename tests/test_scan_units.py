"""Scan building blocks: input streaming, content sniffing and error codes, output files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from fakescan.errors import UsageError
from fakescan.scanner.guard import ScanError
from fakescan.scanner.inputs import iter_inputs, read_list
from fakescan.scanner.output import Output, read_rows
from fakescan.scanner.probe import probe, read_bytes, sniff
from fakescan.scanner.rows import ERROR_CODES, Row
from tests.corpus import BROKEN_KINDS, broken_bytes, valid_bytes


def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_walk_is_sorted_recursive_and_honours_exclude(tmp_path):
    for name in ("b/2.jpg", "a/1.jpg", "a/z/3.png", "c.txt", "a/skip.tmp"):
        _touch(tmp_path / name)
    got = list(iter_inputs([str(tmp_path)], exclude=("*.tmp",)))
    rel = [os.path.relpath(p, tmp_path) for p in got]
    assert rel == ["a/1.jpg", "a/z/3.png", "b/2.jpg", "c.txt"]


def test_symlinks_skipped_by_default_and_loops_guarded_when_followed(tmp_path):
    _touch(tmp_path / "d" / "img.jpg")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")  # d/loop -> d
    os.symlink(tmp_path / "d" / "img.jpg", tmp_path / "d" / "link.jpg")
    plain = list(iter_inputs([str(tmp_path / "d")]))
    assert [Path(p).name for p in plain] == ["img.jpg"]
    followed = list(iter_inputs([str(tmp_path / "d")], follow_symlinks=True))
    assert sorted(Path(p).name for p in followed) == ["img.jpg", "link.jpg"]


def test_list_files_newline_nul_and_non_utf8_names(tmp_path):
    raw = b"caf\xe9.jpg"  # latin-1, not valid UTF-8
    name = os.fsdecode(raw)
    (tmp_path / "nl.txt").write_bytes(b"a.jpg\r\n\n" + raw + b"\nlast.jpg")
    assert list(read_list(str(tmp_path / "nl.txt"))) == ["a.jpg", name, "last.jpg"]
    (tmp_path / "nul.txt").write_bytes(b"with\nnewline.jpg\0" + raw + b"\0")
    assert list(read_list(str(tmp_path / "nul.txt"), null_sep=True)) == ["with\nnewline.jpg",
                                                                         name]
    assert os.fsencode(name) == raw


def test_inputs_are_streamed_not_listed(tmp_path):
    lst = tmp_path / "big.txt"
    with open(lst, "w") as f:
        for i in range(100_000):
            f.write(f"img_{i}.jpg\n")
    it = iter_inputs([], files_from=str(lst))
    assert next(it) == "img_0.jpg"  # a generator: nothing else has been read into a list


def test_sniff_uses_content_not_extension():
    png, _ = valid_bytes("png", 0)
    assert sniff(png) == "png"
    assert sniff(valid_bytes("jpeg", 0)[0]) == "jpeg"
    assert sniff(valid_bytes("webp", 0)[0]) == "webp"
    assert sniff(b"GIF89a....") == "gif"
    assert sniff(b"hello") is None


@pytest.mark.parametrize("kind,code", [k for k in BROKEN_KINDS if k[0] != "directory"])
def test_each_broken_kind_gets_its_code(kind, code, tmp_path):
    from fakescan.config import Preprocess
    from fakescan.scanner.decoders import DecodeOptions, pil_decode_paths

    p = _touch(tmp_path / f"x_{kind}.jpg", broken_bytes(kind, 0))
    d = pil_decode_paths([str(p)], DecodeOptions(Preprocess(64, (0.5,) * 3, (0.5,) * 3)))
    assert d.ok == [] and d.items[0].error.code == code, d.items[0].error


def test_read_errors_have_codes(tmp_path):
    with pytest.raises(ScanError) as e:
        read_bytes(str(tmp_path / "missing.jpg"))
    assert e.value.code == "not_found"
    with pytest.raises(ScanError) as e:
        read_bytes(str(tmp_path))
    assert e.value.code == "not_a_file"
    with pytest.raises(ScanError) as e:
        read_bytes(str(_touch(tmp_path / "big.jpg", b"\xff" * 100)), max_bytes=10)
    assert e.value.code == "too_large"
    if os.geteuid() != 0:  # root reads anything: the permission case cannot be staged
        p = _touch(tmp_path / "locked.jpg")
        p.chmod(0)
        with pytest.raises(ScanError) as e:
            read_bytes(str(p))
        assert e.value.code == "permission_denied"


def test_probe_refuses_decompression_bombs_before_decoding():
    b = io.BytesIO()
    Image.new("1", (20000, 20000)).save(b, "PNG")
    with pytest.raises(ScanError) as e:
        probe(b.getvalue())
    assert e.value.code == "too_large"
    assert probe(valid_bytes("jpeg", 0)[0]).plain


def test_error_codes_are_documented_in_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for code in ERROR_CODES:
        assert f"`{code}`" in readme, code


# ----------------------------------------------------------------------------- output
def _rows(paths, model="m@1", label="fake"):
    return [Row(path=p, label=label, p_fake=0.9, threshold=0.5, model=model) for p in paths]


def test_csv_cells_cannot_run_formulas(tmp_path):
    out = tmp_path / "r.csv"
    o = Output(str(out), "csv", "m@1")
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "'=quoted", "'plain", "a.jpg"]
    o.write(_rows(names))
    o.close()
    text = out.read_text()
    for line in text.splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@")), line
        assert not line.lstrip('"').startswith(("=", "+", "-", "@")), line
    assert [r["path"] for r in read_rows(str(out))] == names  # the guard is undone exactly


def test_non_utf8_names_survive_csv_and_jsonl(tmp_path):
    name = os.fsdecode(b"caf\xe9_\xff.jpg")
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"r.{fmt}"
        o = Output(str(out), fmt, "m@1")
        o.write(_rows([name]))
        o.close()
        if fmt == "jsonl":
            back = json.loads(out.read_text().splitlines()[0])["path"]
        else:
            back = read_rows(str(out))[0]["path"]
        assert os.fsencode(back) == b"caf\xe9_\xff.jpg"


def test_resume_cuts_half_line_skips_done_and_refuses_other_model(tmp_path):
    out = tmp_path / "r.csv"
    o = Output(str(out), "csv", "m@1")
    o.write(_rows(["a.jpg", "b.jpg"]))
    o.close()
    with open(out, "a") as f:
        f.write("c.jpg,ok,fa")  # a killed scan's half-written line
    with pytest.raises(UsageError, match="resume it"):
        Output(str(out), "csv", "m@1")
    seen: list = []
    o = Output(str(out), "csv", "m@1", resume=True, on_previous=seen.extend)
    assert o.done == {"a.jpg", "b.jpg"}
    assert [(r.path, r.status, r.label) for r in seen] == [("a.jpg", "ok", "fake"),
                                                            ("b.jpg", "ok", "fake")]
    o.write(_rows(["c.jpg"]))
    o.close()
    assert [r["path"] for r in read_rows(str(out))] == ["a.jpg", "b.jpg", "c.jpg"]
    with pytest.raises(UsageError, match="mix models"):
        Output(str(out), "csv", "other@2", resume=True)


def test_a_second_writer_is_locked_out(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "r.jsonl"
    first = Output(str(out), "jsonl", "m@1")
    code = ("import sys; from fakescan.scanner.output import Output\n"
            "try:\n    Output(sys.argv[1], 'jsonl', 'm@1', resume=True)\n"
            "except Exception as e:\n    print(e)")
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert "another scan" in r.stdout, r.stdout + r.stderr
    first.close()
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert r.stdout == "", r.stdout  # released once the first writer is done


def test_json_is_assembled_atomically_and_resumable(tmp_path):
    out = tmp_path / "r.json"
    o = Output(str(out), "json", "m@1")
    o.write(_rows(["a.jpg"]))
    assert not out.exists() and Path(str(out) + ".partial.jsonl").exists()
    o.close({"scanned": 1})
    doc = json.loads(out.read_text())
    assert doc["model"] == "m@1" and doc["summary"]["scanned"] == 1
    assert [r["path"] for r in doc["rows"]] == ["a.jpg"]
    o = Output(str(out), "json", "m@1", resume=True)
    assert o.done == {"a.jpg"}
    o.write(_rows(["b.jpg"]))
    o.close({})
    assert [r["path"] for r in read_rows(str(out))] == ["a.jpg", "b.jpg"]


def test_rows_carry_the_spec_fields():
    d = Row(path="x").to_dict()
    assert list(d)[:8] == ["path", "status", "label", "p_fake", "threshold", "model",
                           "error_code", "error"]


def test_scan_options_hold_the_choices_enums_and_refuse_other_values():
    from fakescan.choices import DecoderName, Engine, Precision, RuntimeName
    from fakescan.errors import UsageError
    from fakescan.scanner.options import ScanOptions

    o = ScanOptions(decoder="pil", runtime="onnx", precision="int8", engine="local")
    assert (o.decoder, o.runtime, o.precision, o.engine) == (
        DecoderName.pil, RuntimeName.onnx, Precision.int8, Engine.local)
    assert o.decoder is DecoderName.pil and o.decoder == "pil"
    with pytest.raises(UsageError, match="decoder must be one of auto, dali, pil"):
        ScanOptions(decoder="jpegturbo")
    with pytest.raises(UsageError, match="precision must be one of"):
        ScanOptions(precision="fp8")
