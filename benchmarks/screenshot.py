"""The README's console screenshot: `make run`'s live Porto demo, seen in headless chromium at a simulated hour.

`python -m benchmarks.screenshot [--at 13] [--out docs/console-porto.png]` starts `lastmile serve --demo
scenarios/porto-centre-day.toml --exit` on a free port, waits for the demo's KPI line of that hour, opens the
console URL it printed (planner key included) in Debian's chromium (selenium, as the browser tests do), waits
until couriers and their routes are drawn, saves the screenshot and stops the demo. Needs `chromium` and
`chromium-driver` (`.ci/run` installs them) and the dev dependencies (`make test` installs them).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from benchmarks.bench_api import _free_port
from benchmarks.bench_demo import SCENARIO


def _browser() -> Any:
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        raise SystemExit("screenshot: needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _count(driver: Any, selector: str) -> int:
    return int(driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=int, default=13, help="simulated hour of the day to take it at (default 13)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console-porto.png")
    args = parser.parse_args(argv)
    lastmile = Path(sys.executable).parent / "lastmile"
    demo = subprocess.Popen([str(lastmile), "serve", "--demo", str(ROOT / SCENARIO), "--exit", "--port",
                             str(_free_port())], stdout=subprocess.PIPE, text=True, bufsize=1)
    assert demo.stdout is not None
    try:
        url = None
        for line in demo.stdout:
            print(line, end="", flush=True)
            if line.startswith("console: "):
                url = line.removeprefix("console: ").strip()
            if url is not None and line.startswith(f"{args.at:02d}:00 "):
                break
        else:
            raise SystemExit(f"screenshot: the demo ended before {args.at:02d}:00")
        assert url is not None
        browser = _browser()
        try:
            browser.get(url + "&poll=1")
            deadline = time.monotonic() + 60
            while not (_count(browser, ".courier") and _count(browser, "path.route") and _count(browser, ".order")):
                if time.monotonic() > deadline:
                    raise SystemExit("screenshot: no couriers, routes and orders drawn within 60 s")
                time.sleep(0.5)
            time.sleep(3)  # a few polls more: every route and panel figure in
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
