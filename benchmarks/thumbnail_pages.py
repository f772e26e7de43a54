"""Grid thumbnails: one page made lazily (cold, then warm from the disk cache) vs every image at once.

Baseline: ``make_thumbnails`` over the whole set (what the Workbench did at start before the
ThumbnailStore). Prints and saves JSON in benchmarks/results/thumbnail_pages.json, with the
machine's load average (runs share 2 cores with other work: compare ratios of one run).
Usage: python benchmarks/thumbnail_pages.py [n_images]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

PAGE = 48


def main(n: int) -> dict:
    import clipviz
    from clipviz.engine.thumbnails import ThumbnailStore, make_thumbnails

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        data = clipviz.datasets.shapes(n, seed=0)
        for i, image in enumerate(data.images):
            image.save(folder / f"{i:06d}.png")
        images = clipviz.ImageSet.from_folder(folder)
        t = time.perf_counter()
        make_thumbnails(images, 96)
        all_at_once = time.perf_counter() - t
        cache = Path(tmp) / "cache"
        t = time.perf_counter()
        ThumbnailStore(clipviz.ImageSet.from_folder(folder), cache=cache).page(range(PAGE))
        cold = time.perf_counter() - t
        t = time.perf_counter()
        warm_store = ThumbnailStore(clipviz.ImageSet.from_folder(folder), cache=cache)
        warm_store.page(range(PAGE))
        warm = time.perf_counter() - t
    return {
        "n_images": n,
        "page_size": PAGE,
        "all_images_at_start_s": round(all_at_once, 3),
        "first_page_cold_s": round(cold, 3),
        "first_page_warm_disk_cache_s": round(warm, 3),
        "ratio_all_at_start_over_first_page_cold": round(all_at_once / cold, 1),
        "ratio_all_at_start_over_first_page_warm": round(all_at_once / warm, 1),
        "thumbnails_decoded_on_warm_reopen": warm_store.made,
        "loadavg": list(os.getloadavg()),
        "note": "measured on a shared 2-core machine under load; compare ratios within one run",
    }


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    out = Path(__file__).parent / "results" / "thumbnail_pages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
