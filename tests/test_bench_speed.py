"""The speed harness on tiny inputs: its clocks measure real work, its photo folder holds distinct
photos with matching masks, and its tables put every figure next to its reference."""

import sys
import time

import numpy as np
import pytest

from bench import speed
from imgfix import io

TINY = "tiny"  # the model in the tiny_zoo fixture (conftest.py)


def test_timed_clocked_and_peak_rss_measure_real_work():
    nap = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    assert 0.3 <= speed.timed(nap, repeat=1, warmup=0) < 10
    with pytest.raises(RuntimeError, match="failed"):
        speed.run([sys.executable, "-c", "raise SystemExit(3)"])

    # The warm-up call is left out and the median ignores one slow outlier.
    naps = iter([0.5, 0.0, 0.05, 0.05, 0.5])
    calls = []
    seconds = speed.clocked(lambda: calls.append(time.sleep(next(naps))), repeat=4, warmup=1)
    assert len(calls) == 5 and 0.05 <= seconds < 0.3

    idle = speed.peak_rss([sys.executable, "-c", "pass"])
    hog = speed.peak_rss([sys.executable, "-c", "b = b'x' * (300 * 2**20)"])
    assert 1 < idle < 150 and hog - idle > 250


def test_cold_telea_reference_fills_the_hole(tmp_path):
    rgb, hole = speed.square_photo("astronaut", 64), speed.medium_mask(64)
    image, mask, out = tmp_path / "a.png", tmp_path / "m.png", tmp_path / "t.png"
    speed.save_pair(rgb, hole, image, mask)
    assert speed.run(speed.telea_command(image, mask, out)) > 0
    filled = io.load_image(out).pixels
    assert filled.shape == (64, 64, 3)
    np.testing.assert_array_equal(filled[~hole], rgb[~hole])
    assert (filled[hole] != rgb[hole]).any()


def test_photo_folder_holds_distinct_photos_with_matching_masks(tmp_path):
    count = len(speed.eval_images.ALL_IMAGES) + 2  # two photos cut twice from one image
    paths, mask_dir = speed.photo_folder(tmp_path, count, size=64)
    assert len(set(paths)) == count and all(p.suffix == ".png" for p in paths)
    assert sorted(m.name for m in mask_dir.iterdir()) == sorted(p.name for p in paths)
    pixels = [io.load_image(p).pixels for p in paths]
    assert all(p.shape == (64, 64, 3) for p in pixels)
    assert len({p.tobytes() for p in pixels}) == count
    assert paths[0].stem.endswith("astronaut") and paths[-2].stem.endswith("astronaut")
    holes = [io.load_mask(mask_dir / p.name, (64, 64)) for p in paths]
    assert all(0 < h.mean() <= 0.5 for h in holes)
    assert len({h.tobytes() for h in holes}) == count


def test_latency_and_batch_with_the_tiny_model_on_both_runtimes(tiny_zoo, tmp_path):
    from imgfix.pipelines.inpaint import load_inpainter
    from imgfix.pipelines.texture import texture_options
    from imgfix.runtime import Settings

    inpainters = {
        rt: load_inpainter(TINY, tiny_zoo, Settings(device="cpu", runtime=rt))
        for rt in speed.RUNTIMES
    }
    assert {rt: f.runtime for rt, f in inpainters.items()} == {rt: rt for rt in speed.RUNTIMES}
    textured = load_inpainter(TINY, tiny_zoo, detail=texture_options(speed.TEXTURE_STRENGTH))
    (row,) = speed.latency(inpainters, (64,), repeat=2, warmup=1, textured=textured)
    assert row["size"] == 64 and 0 < row["hole_fraction"] <= 0.5
    assert row["imgfix_s"] > 0 and row["imgfix_tf_s"] > 0 and row["telea_s"] > 0
    assert row["imgfix_texture_s"] > 0

    result = speed.batch(inpainters, tmp_path, count=3, repeat=1, warmup=0, size=64)
    assert result["photos"] == 3
    assert result["imgfix_images_per_s"] == pytest.approx(3 / result["imgfix_s"])
    assert result["imgfix_tf_images_per_s"] == pytest.approx(3 / result["imgfix_tf_s"])
    assert result["telea_images_per_s"] == pytest.approx(3 / result["telea_s"])
    photos = sorted((tmp_path / "photos").iterdir())
    for folder, name in (("imgfix-out", "{}.inpainted.png"), ("telea-out", "{}.png")):
        for photo in photos:
            before = io.load_image(photo).pixels
            after = io.load_image(tmp_path / folder / name.format(photo.stem)).pixels
            hole = io.load_mask(tmp_path / "masks" / photo.name, (64, 64))
            np.testing.assert_array_equal(after[~hole], before[~hole])
            assert (after[hole] != before[hole]).any()


def test_main_refuses_fewer_than_five_runs(capsys):
    with pytest.raises(SystemExit):
        speed.main(["--repeat", "3"])
    assert "at least 5" in capsys.readouterr().err


def results(quick: bool = False) -> dict:
    return {
        "settings": {"repeat": 1 if quick else 5, "warmup": not quick, "quick": quick,
                     "model": "photo-inpainter", "generator": "emoji-cgan",
                     "command": "python -m bench.speed", "machine": "2 CPU cores"},
        "startup": {"imgfix_help_s": 0.2, "python_pass_s": 0.02},
        "cold": {"photo": "astronaut 512x512 PNG", "hole_fraction": 0.47,
                 "imgfix_inpaint_s": 0.9, "imgfix_inpaint_tf_s": 6.0, "telea_s": 0.3,
                 "import_tensorflow_s": 4.0},
        "latency": [{"size": 256, "hole_fraction": 0.33, "imgfix_s": 0.1, "imgfix_tf_s": 0.2,
                     "telea_s": 0.01},
                    {"size": 512, "hole_fraction": 0.4, "imgfix_s": 2.5, "imgfix_tf_s": 2.0,
                     "telea_s": 0.5}],
        "batch": {"photos": 50, "size": 512, "imgfix_s": 10.0, "imgfix_images_per_s": 5.0,
                  "imgfix_tf_s": 25.0, "imgfix_tf_images_per_s": 2.0,
                  "telea_s": 5.0, "telea_images_per_s": 10.0},
        "memory": {"skipped": "quick mode"} if quick else {
            "photo": "4000x3000 JPEG",
            "runs": [{"hole_percent": 2, "hole_fraction": 0.021, "imgfix_rss_mib": 350.0,
                      "imgfix_tf_rss_mib": 1400.0, "imgfix_s": 7.0, "imgfix_tf_s": 9.0,
                      "telea_rss_mib": 350.0, "telea_s": 2.0}]},
        "generation": {"prompt": "cat", "cold_generate_s": 1.5, "cold_generate_tf_s": 6.0,
                       "import_tensorflow_s": 4.0,
                       "per_image": [{"n": 1, "imgfix_s_per_image": 0.2,
                                      "imgfix_tf_s_per_image": 0.3,
                                      "network_s_per_image": 0.1},
                                     {"n": 64, "imgfix_s_per_image": 0.03,
                                      "imgfix_tf_s_per_image": 0.04,
                                      "network_s_per_image": 0.01}]},
    }  # fmt: skip


def test_markdown_puts_every_figure_next_to_its_reference():
    text = speed.markdown(results())
    assert "median of 5 runs after a warm-up" in text
    for title in speed.TITLES.values():
        assert f"### {title}" in text
    body = text[text.index("### Start-up") :]  # the targets table comes first
    rows = [line for line in body.splitlines() if line.startswith("| ") and "---" not in line]
    header = "| what | imgfix | reference | reference figure | imgfix / reference |"
    assert rows.count(header) == len(speed.TITLES)
    assert all(row.count(" | ") == 4 for row in rows)
    # start-up 1; cold 3; latency 2 per size; batch 3; memory 3 per run; generation 2 + 2 per n
    assert len(rows) - len(speed.TITLES) == 1 + 3 + 4 + 3 + 3 + 6
    assert "| `imgfix --help` | 200 ms | `python -c pass` | 20 ms | 10.00x |" in text
    assert '(medium), LiteRT | 900 ms | `python -c "import tensorflow"` | 4 s | 0.23x |' in text
    assert "(medium), TensorFlow (`--runtime tensorflow`) | 6 s | the same on LiteRT" in text
    assert "| 5 images/s |" in text and "| 10 images/s | 0.50x |" in text
    assert "2% hole, TensorFlow | 1,400 MiB | the same on LiteRT | 350 MiB | 4.00x |" in text
    assert "512x512 px, 40% hole, LiteRT | 2.5 s |" in text
    assert "-n 64, per image" in text and "| 30 ms |" in text
    quick = speed.markdown(results(quick=True))
    assert "one run without a warm-up" in quick and "median" not in quick
    assert "Skipped (quick mode)." in quick and "MiB" not in quick


def test_headline_quotes_each_figure_with_its_reference():
    lines = speed.headline(results())
    text = "\n".join(lines)
    assert "`imgfix --help` 200 ms (`python -c pass` 20 ms)" in text
    assert "900 ms, against 300 ms for a cold OpenCV Telea process; on TensorFlow 6 s" in text
    assert "importing TensorFlow alone takes 4 s" in text
    assert "2% hole 350 MiB (TensorFlow 1,400 MiB), Telea 350 MiB" in text
    assert "512 px 2.5 s vs 500 ms (2 s)" in text
    assert "Targets:** 4 of 6 met; missed: cold `imgfix generate --prompt cat`; missed: " in text
    # Quick runs skip the memory group: no memory line, nothing invented.
    assert not any("Peak RSS" in line for line in speed.headline(results(quick=True)))


def test_the_page_section_plots_each_cold_start_beside_its_reference(tmp_path):
    from bench import report

    text = report.section("speed", results(), tmp_path, "bench/")
    assert text.startswith(speed.markdown(results()))
    assert text.endswith("![cold start against references](bench/cold-start.png)")
    assert (tmp_path / "cold-start.png").read_bytes()[:4] == b"\x89PNG"
    assert [p[0] for p in report._cold_pairs(results())] == [
        "imgfix --help", "cold imgfix inpaint", "cold inpaint, TensorFlow", "cold imgfix generate"
    ]  # fmt: skip


def test_the_runtime_memory_floors_sit_beside_the_largest_hole():
    data = results()
    data["memory"]["import_tensorflow_rss_mib"] = 700.0
    data["memory"]["import_litert_rss_mib"] = 35.0
    text = speed.markdown(data)
    assert (
        '| 1,400 MiB | `python -c "import tensorflow"` (the runtime alone) | 700 MiB | 2.00x |'
        in text
    )
    assert "(the runtime alone) | 35 MiB | 10.00x |" in text
    headline = "\n".join(speed.headline(data))
    assert "importing TensorFlow alone peaks at 700 MiB, LiteRT at 35 MiB." in headline


def test_targets_are_the_issue_bars():
    rows = {what: (value, limit, met) for what, value, _, limit, met in speed.targets(results())}
    assert rows["cold `imgfix inpaint`, 512 px"] == (0.9, 1.0, True)
    assert rows["the same / a cold Telea process"] == (pytest.approx(3.0), 4.0, True)
    assert rows["cold `imgfix generate --prompt cat`"] == (1.5, 1.0, False)
    assert rows["peak RSS, 4000x3000, 2% hole"] == (350.0, 400.0, True)
    assert rows["`fill` at 512 px, LiteRT / TensorFlow"] == (1.25, 1.0, False)
    assert rows["batch throughput, 50 photos"] == (5.0, 2 * speed.BATCH_BEFORE, True)
    table = speed.markdown(results())
    assert "| cold `imgfix generate --prompt cat` | 1.5 s | ≤ 1 s | no |" in table
    assert "| batch throughput, 50 photos | 5 images/s | ≥ 4.3 images/s | yes |" in table
