"""The studio page driven in real headless Chromium (Debian's `chromium`, through Playwright).

The server runs the real app with a tiny random-weight model whose model calls are slowed a little
(:func:`tests.web_helpers.slow_factory`), so that progress can be watched and a job can still be
queued when the test cancels it. Playwright never downloads a browser here: it launches
``/usr/bin/chromium`` (or ``$SWINIR_CHROMIUM``). `.ci/run` installs the package.

Run as ``python -m tests.test_web_browser --screenshot docs/web-studio.png`` to make the README's
screenshot with the bundled model.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'swinir[web]')")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

from tests.web_helpers import Running, png_bytes, running_server, settings_for, slow_factory, tiny_model  # noqa: E402

CHROMIUM = os.environ.get("SWINIR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 20_000

if not Path(CHROMIUM).exists():
    if os.environ.get("SWINIR_REQUIRE_CHROMIUM"):  # set by .ci/run, which installs it
        raise RuntimeError(f"SWINIR_REQUIRE_CHROMIUM is set but there is no Chromium at {CHROMIUM}")
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SWINIR_CHROMIUM); .ci/run installs it",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    model = tiny_model(tmp_path_factory.mktemp("browser-model"))
    # 64x64 inputs in 32-pixel tiles with overlap 8: 9 model calls of ~0.08 s each per image.
    with running_server(settings_for(model, max_pixels=100_000), slow_factory(0.08)) as running:
        yield running


@pytest.fixture
def page(browser, srv: Running):
    context = browser.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(srv.url + "/")
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    context.close()
    assert not errors, errors


def _files(tmp_path: Path, n: int, size: tuple[int, int] = (64, 64), mode: str = "RGB") -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        path.write_bytes(png_bytes(size, mode, seed=i))
        paths.append(path)
    return paths


def _items(pg) -> list[dict]:
    return pg.evaluate(
        """() => [...document.querySelectorAll('#queue .item')].map((el) => ({
            state: el.dataset.state,
            name: el.querySelector('.name').textContent,
            progress: parseFloat(el.querySelector('.fill').style.width) / 100,
            error: el.querySelector('.error').hidden ? null : el.querySelector('.error').textContent,
        }))"""
    )


def _wait_states(pg, states: list[str]) -> None:
    pg.wait_for_function(
        "(want) => JSON.stringify([...document.querySelectorAll('#queue .item')].map(e => e.dataset.state))"
        " === JSON.stringify(want)",
        arg=states,
    )


def test_two_images_progress_compare_zoom_download(page, tmp_path: Path) -> None:
    page.set_input_files("#files", [str(p) for p in _files(tmp_path, 2)])
    seen: list[list[float]] = [[], []]
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        items = _items(page)
        for i, item in enumerate(items):
            if item["state"] == "running":
                seen[i].append(item["progress"])
        if len(items) == 2 and all(it["state"] == "done" for it in items):
            break
        time.sleep(0.03)
    assert [it["state"] for it in _items(page)] == ["done", "done"]
    for values in seen:  # each bar was seen part-way, and moving forward
        partial = [v for v in values if 0 < v < 1]
        assert partial, values
        assert values == sorted(values)
    assert all(it["progress"] == 1 for it in _items(page))

    # The first finished image is in the viewer: before and after, both 128x128.
    page.wait_for_function("document.getElementById('after-img').naturalWidth === 128")
    assert page.eval_on_selector("#stage", "el => el.classList.contains('empty')") is False

    # Drag the divider from the middle to a quarter of the stage.
    stage = page.locator("#stage").bounding_box()
    knob = page.locator("#split .knob").bounding_box()
    page.mouse.move(knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2)
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] * 0.25, knob["y"], steps=5)
    page.mouse.up()
    assert abs(int(page.get_attribute("#split", "aria-valuenow")) - 25) <= 1
    clip = page.eval_on_selector("#after-img", "el => el.style.clipPath")
    assert clip.startswith("inset(0px 0px 0px") or clip.startswith("inset(0 0 0")

    # Zoom: 1:1 and above is pixelated, zoomed out is smooth; the wheel zooms too; dragging pans.
    page.click("#zoom-1")
    page.click("#zoom-in")
    assert page.text_content("#zoom-label") == "150%"
    assert page.eval_on_selector("#after-img", "el => el.style.imageRendering") == "pixelated"
    page.click("#zoom-out")
    page.click("#zoom-out")
    assert page.text_content("#zoom-label") == "67%"
    assert page.eval_on_selector("#after-img", "el => el.style.imageRendering") == "auto"
    page.mouse.move(stage["x"] + stage["width"] * 0.6, stage["y"] + stage["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function("document.getElementById('zoom-label').textContent !== '67%'")
    before = page.eval_on_selector("#layers", "el => el.style.transform")
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] * 0.7, stage["y"] + stage["height"] / 2 + 40, steps=4)
    page.mouse.up()
    assert page.eval_on_selector("#layers", "el => el.style.transform") != before

    # The "before" image: nearest (pixelated <img>) or bicubic (computed into a canvas).
    page.click("#zoom-1")
    assert page.eval_on_selector("#before-img", "el => el.style.imageRendering") == "pixelated"
    page.select_option("#interp", "bicubic")
    assert page.is_visible("#before-canvas") and not page.is_visible("#before-img")
    painted = page.evaluate(
        "() => { const c = document.getElementById('before-canvas');"
        " return [c.width, c.height, c.getContext('2d').getImageData(64, 64, 1, 1).data[3]]; }"
    )
    assert painted == [128, 128, 255]

    # Download one result and check its size.
    with page.expect_download() as info:
        page.locator("#queue .item").nth(0).locator(".download").click()
    path = tmp_path / "one.png"
    info.value.save_as(path)
    assert info.value.suggested_filename == "img0_tiny_x2.png"
    assert Image.open(path).size == (128, 128)

    # Download all as a zip.
    with page.expect_download() as info:
        page.click("#zip")
    zpath = tmp_path / "all.zip"
    info.value.save_as(zpath)
    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == ["img0_tiny_x2.png", "img1_tiny_x2.png"]


def test_cancel_a_queued_job_and_retry_it(page, tmp_path: Path) -> None:
    page.set_input_files("#files", [str(p) for p in _files(tmp_path, 3)])
    page.wait_for_function("document.querySelectorAll('#queue .item')[2]?.dataset.state === 'queued'")
    page.locator("#queue .item").nth(2).locator(".cancel").click()
    page.wait_for_function("document.querySelectorAll('#queue .item')[2].dataset.state === 'cancelled'")
    _wait_states(page, ["done", "done", "cancelled"])
    page.locator("#queue .item").nth(2).locator(".retry").click()
    _wait_states(page, ["done", "done", "done"])


def test_corrupt_file_shows_its_error_beside_it(page, tmp_path: Path) -> None:
    page.set_input_files(
        "#files",
        [
            {"name": "broken.png", "mimeType": "image/png", "buffer": png_bytes((40, 40))[:150]},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image at all" * 5},
            {"name": "good.png", "mimeType": "image/png", "buffer": png_bytes((16, 16))},
        ],
    )
    _wait_states(page, ["failed", "failed", "done"])
    items = _items(page)
    assert items[0]["name"] == "broken.png" and "truncated or corrupt" in items[0]["error"]
    assert items[1]["name"] == "notes.txt" and "not an image" in items[1]["error"]
    assert items[2]["error"] is None


def test_paste_and_drop_add_images(page) -> None:
    data = base64.b64encode(png_bytes((16, 16), "RGBA")).decode()
    script = """([data, kind]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], kind + ".png", {type: "image/png"}));
        if (kind === "pasted") document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt}));
        else document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }"""
    page.evaluate(script, [data, "pasted"])
    page.evaluate(script, [data, "dropped"])
    _wait_states(page, ["done", "done"])
    assert [it["name"] for it in _items(page)] == ["pasted.png", "dropped.png"]
    # Alpha is shown over a checkerboard.
    assert "conic-gradient" in page.eval_on_selector("#stage", "el => getComputedStyle(el).backgroundImage")


def test_settings_are_remembered(page, srv: Running, tmp_path: Path) -> None:
    assert not page.is_visible("#noise-label")  # this model has no noise levels
    assert not page.is_visible("#quality-label")  # PNG has no quality
    page.select_option("#format", "webp")
    assert page.is_visible("#quality-label")
    page.select_option("#scale", "3")
    page.select_option("#tta", "true")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.input_value("#format") == "webp" and page.input_value("#scale") == "3"
    assert page.input_value("#tta") == "true"
    page.set_input_files("#files", [str(_files(tmp_path, 1, (16, 16))[0])])
    _wait_states(page, ["done"])
    # The finished image opens in the viewer; its title says the server ran the self-ensemble
    # (the job's own "tta" field, so the choice reached the server).
    page.wait_for_function("document.getElementById('view-title').textContent.includes('8 passes')")
    with page.expect_download() as info:
        page.locator("#queue .item .download").click()
    path = tmp_path / "r.webp"
    info.value.save_as(path)
    out = Image.open(path)
    assert out.format == "WEBP" and out.size == (48, 48)


def test_page_opened_with_the_token_works(browser, tmp_path: Path) -> None:
    """The address printed for a token-protected server: the page and its requests get through."""
    model = tiny_model(tmp_path)
    with running_server(settings_for(model, token="browser-token-1")) as srv:
        context = browser.new_context()
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(srv.url + "/?token=browser-token-1")
        pg.wait_for_selector("body[data-ready='1']")
        assert "token" not in pg.url  # kept in a cookie, not in the address bar
        pg.set_input_files(
            "#files", [{"name": "t.png", "mimeType": "image/png", "buffer": png_bytes((16, 16))}]
        )
        _wait_states(pg, ["done"])
        context.close()
        fresh = browser.new_context()
        pg = fresh.new_page()
        assert pg.goto(srv.url + "/").status == 401
        fresh.close()


def test_api_docs_render_offline(page, srv: Running) -> None:
    page.goto(srv.url + "/docs")
    page.wait_for_selector(".op")
    text = page.text_content("#ops")
    paths = ["/api/models", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result"]
    paths.append("/api/results.zip")
    assert all(path in text for path in paths)
    assert "outscale" in text and "noise" in text  # the form fields of POST /api/jobs


def make_screenshot(target: Path) -> None:
    """The README's screenshot: the bundled model on the bundled sample, compared at 1:1."""
    import tempfile

    from swinir.web.catalog import choice_for
    from swinir.web.settings import WebSettings

    sample = Path(__file__).resolve().parents[1] / "src" / "swinir" / "assets" / "sample.png"
    settings = WebSettings(models=(choice_for("default"),), port=0, quiet=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(settings) as srv,
        playwright.sync_playwright() as p,
    ):
        crop = Path(tmp) / "sample-detail.png"
        Image.open(sample).crop((64, 48, 160, 128)).save(crop)
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = b.new_page(viewport={"width": 1280, "height": 760})
        pg.goto(srv.url + "/")
        pg.wait_for_selector("body[data-ready='1']")
        pg.set_input_files("#files", [str(sample), str(crop)])
        done = "[...document.querySelectorAll('#queue .item')].every((e) => e.dataset.state === 'done')"
        pg.wait_for_function(done, timeout=600_000)
        pg.wait_for_function("document.getElementById('after-img').naturalWidth > 0")
        pg.click("#zoom-1")
        pg.click("#zoom-in")
        pg.click("#zoom-in")  # 225%: pixelated, so the difference is visible pixel by pixel
        pg.wait_for_timeout(400)
        pg.screenshot(path=str(target))
        b.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--screenshot":
        make_screenshot(Path(sys.argv[2]))
    else:
        print("usage: python -m tests.test_web_browser --screenshot OUT.png", file=sys.stderr)
        sys.exit(2)
