"""The SSD1306 driver, canvas and status screens, asserted on what the panel shows:
the fake controller decodes the I2C traffic into the pixels a person would see."""

import shutil
import subprocess

import pytest

from hardware.errors import DeviceAbsent
from hardware.i2c import font
from hardware.i2c.canvas import Canvas
from hardware.i2c.ssd1306 import Ssd1306
from hardware.i2c.status_screen import STATES, BoxView, layout

from .fakei2c import SSD1306, FakeBus

ALLOWED = {"read_byte_data", "write_byte_data", "read_i2c_block_data", "write_i2c_block_data"}


def panel(height=64):
    chip = SSD1306(height)
    bus = FakeBus({0x3C: chip})
    display = Ssd1306(bus, height=height)
    display.init()
    return display, chip, bus


def read_text(image, row, x=0, count=None):
    """Read characters off the panel by matching each 6x8 cell against the font."""
    glyphs = {font.glyph(chr(code)): chr(code) for code in range(font.FIRST, font.LAST + 1)}
    width = len(image[0])
    count = count if count is not None else (width - x + 1) // font.CELL_WIDTH
    text = []
    for index in range(count):
        left, top = x + index * font.CELL_WIDTH, row * font.CELL_HEIGHT
        cell = bytes(
            sum(1 << dy for dy in range(7) if image[top + dy][left + dx])
            for dx in range(font.GLYPH_WIDTH)
        )
        text.append(glyphs.get(cell, "\N{REPLACEMENT CHARACTER}"))
    return "".join(text).rstrip()


def ascii_art(image, x, y, width, height):
    return [
        "".join("#" if image[y + dy][x + dx] else "." for dx in range(width))
        for dy in range(height)
    ]


def test_init_turns_the_panel_on_upright():
    _, chip, bus = panel()
    state = chip.state
    assert state.display_on and state.charge_pump
    assert (state.multiplex, state.com_pins, state.addressing) == (64, 0x12, 0)
    assert state.segment_remap and state.com_reversed
    assert bus.methods_used() <= ALLOWED


def test_text_appears_where_drawn():
    display, chip, _ = panel()
    canvas = Canvas()
    canvas.text(0, "Commonsbox")
    canvas.text(3, "Ar", x=12)
    display.show(canvas)
    image = chip.visible()
    assert read_text(image, 0) == "Commonsbox"
    assert read_text(image, 3, x=12) == "Ar"
    assert read_text(image, 1) == ""
    # The letters drawn by hand, independent of the font table: 'A' then 'r'.
    assert ascii_art(image, 12, 24, 11, 8) == [
        ".###.......",
        "#...#......",
        "#...#.#.##.",
        "#...#.##..#",
        "#####.#....",
        "#...#.#....",
        "#...#.#....",
        "...........",
    ]
    assert not any(image[y][x] for y in range(24, 32) for x in range(12))


def test_characters_outside_the_font_show_as_question_marks():
    display, chip, _ = panel()
    canvas = Canvas()
    item = canvas.text(1, "Zürich ✓")
    display.show(canvas)
    assert item.text == "Z?rich ?"
    assert read_text(chip.visible(), 1) == "Z?rich ?"


def test_long_text_is_clipped_to_21_columns():
    canvas = Canvas()
    assert canvas.text(0, "x" * 30).text == "x" * 21


def test_show_sends_only_changed_pages_in_32_byte_blocks():
    display, chip, bus = panel()
    canvas = Canvas()
    canvas.text(0, "Ready")
    assert display.show(canvas) == 8  # RAM content unknown after init: everything
    assert chip.data_bytes == 8 * 128
    assert display.show(canvas) == 0
    assert chip.data_bytes == 8 * 128
    canvas.text(5, "192.168.1.23")
    assert display.show(canvas) == 1
    assert chip.data_bytes == 9 * 128
    assert read_text(chip.visible(), 5) == "192.168.1.23"
    assert read_text(chip.visible(), 0) == "Ready"
    blocks = [len(e[3]) for e in bus.log if e[0] == "write_i2c_block_data"]
    assert max(blocks) <= 32


def test_contrast_and_off():
    display, chip, _ = panel()
    canvas = Canvas()
    canvas.fill(0, 0, 128, 64)
    display.show(canvas)
    assert all(all(row) for row in chip.visible())
    display.contrast(0x10)
    assert chip.state.contrast == 0x10
    display.off()
    assert not any(any(row) for row in chip.visible())
    display.on()
    assert all(all(row) for row in chip.visible())
    with pytest.raises(ValueError):
        display.contrast(256)


def test_128x32_module():
    display, chip, _ = panel(32)
    assert (chip.state.multiplex, chip.state.com_pins) == (32, 0x02)
    canvas = Canvas(128, 32)
    canvas.text(3, "bottom line")
    display.show(canvas)
    assert read_text(chip.visible(), 3) == "bottom line"
    with pytest.raises(ValueError):
        display.show(Canvas(128, 64))


def test_absent_display():
    with pytest.raises(DeviceAbsent):
        Ssd1306(FakeBus()).probe()
    Ssd1306(FakeBus({0x3C: SSD1306()})).probe()


# --- status screens, as data -------------------------------------------------------

BOX = BoxView(
    "Miller family box", "192.168.1.23", "unclaimed", "K7QF-2M9X-HT4P", "http://192.168.1.23/"
)


def texts(canvas):
    return {item.row: item.text for item in canvas.texts}


def test_unclaimed_shows_setup_code_and_a_qr_code_of_the_url():
    canvas = layout(BOX)
    # A real code (14 characters) is wider than the text beside the QR code: it wraps.
    assert texts(canvas) == {
        0: "Miller fam",
        1: "Setup code",
        2: "K7QF-2M9X-",
        3: "HT4P",
        4: "Scan, or:",
        5: "192.168.1.",
        6: "23",
    }
    (qr,) = canvas.qr_codes
    assert qr.data == "http://192.168.1.23/"
    assert qr.x + qr.size == 128 and qr.size <= 64 and qr.scale == 2
    assert all(item.x + len(item.text) * font.CELL_WIDTH <= qr.x for item in canvas.texts)


def test_ready_degraded_starting_resetting():
    ready = BoxView("Miller", "192.168.1.23", "ready")
    assert texts(layout(ready)) == {0: "Miller", 2: "Ready", 4: "192.168.1.23"}
    degraded = BoxView("Miller", "192.168.1.23", "degraded")
    assert texts(layout(degraded))[2] == "Needs attention:"
    assert texts(layout(degraded))[4] == "192.168.1.23"
    assert texts(layout(BoxView("Miller", "", "starting"))) == {0: "Miller", 2: "Starting..."}
    assert "Do not unplug it." in texts(layout(BoxView("Miller", "", "resetting"))).values()
    for state in STATES:
        layout(BoxView("Miller", "10.0.0.1", state, "CODE"), 128, 32)
    with pytest.raises(ValueError):
        layout(BoxView("Miller", "", "sleeping"))


def test_reset_confirm_asks_for_a_second_press():
    rows = texts(layout(BoxView("Miller", "192.168.1.23", "reset-confirm")))
    assert rows[0] == "Factory reset?"
    assert (rows[2], rows[3]) == ("Press the button", "again within 30 s")
    small = texts(layout(BoxView("Miller", "192.168.1.23", "reset-confirm"), 128, 32))
    assert small == {
        0: "Factory reset?",
        1: "Press the button",
        2: "again within 30 s",
        3: "to erase this box.",
    }


def test_status_screen_reaches_the_panel():
    display, chip, _ = panel()
    display.show(layout(BoxView("Miller", "192.168.1.23", "ready")))
    image = chip.visible()
    assert [read_text(image, row) for row in range(8)] == [
        "Miller",
        "",
        "Ready",
        "",
        "192.168.1.23",
        "",
        "",
        "",
    ]


def zbar(image, tmp_path, scale=4, margin=8):
    """Photograph the panel: lit pixels white, the black bezel around it."""
    height, width = len(image), len(image[0])
    w, h = (width + 2 * margin) * scale, (height + 2 * margin) * scale
    lines = []
    for py in range(h):
        y = py // scale - margin
        lines.append(
            "".join(
                "0"
                if 0 <= y < height
                and 0 <= px // scale - margin < width
                and image[y][px // scale - margin]
                else "1"
                for px in range(w)
            )
        )
    path = tmp_path / "panel.pbm"
    path.write_text(f"P1\n{w} {h}\n" + "\n".join(lines) + "\n")
    result = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip()


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg not installed")
@pytest.mark.parametrize("height", [64, 32])
def test_the_qr_code_on_the_panel_scans_to_the_url(tmp_path, height):
    display, chip, _ = panel(height)
    display.show(layout(BOX, 128, height))
    assert zbar(chip.visible(), tmp_path) == "http://192.168.1.23/"
    display.off()
    assert zbar(chip.visible(), tmp_path) == ""
