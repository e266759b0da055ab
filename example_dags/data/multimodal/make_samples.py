"""
Regenerate the sample files of the multimodal example: product photos (PNG, one colour each, with a
``Description`` the Gemini emulator reads), a two-page care guide (PDF) and a few text-only products
(``products.jsonl``). Run ``python example_dags/data/multimodal/make_samples.py``; the output is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes

__all__ = ["PHOTOS", "PRODUCTS", "write_samples"]

HERE = Path(__file__).resolve().parent

#: File name, colour and description of each product photo.
PHOTOS = (
    ("red_hiking_jacket.png", (196, 30, 45), "a red waterproof hiking jacket"),
    ("blue_running_shoes.png", (30, 80, 200), "a pair of blue running shoes"),
    ("green_camping_tent.png", (40, 150, 60), "a green camping tent for two people"),
    ("yellow_kayak.png", (240, 200, 30), "a yellow sea kayak with a paddle"),
)
#: Text-only products.
PRODUCTS = (
    {"id": "p-100", "text": "Merino wool hiking socks that stay warm when wet."},
    {"id": "p-101", "text": "A lightweight stainless steel water bottle, 750 ml."},
    {"id": "p-102", "text": "A headlamp with 300 lumens and a rechargeable battery."},
    {"id": "p-103", "text": "A down sleeping bag rated to minus ten degrees."},
)
CARE_GUIDE = (
    "Care guide for waterproof jackets: wash cold with a mild detergent, never use fabric softener.",
    "Care guide for tents: dry the tent fully before storing it, and keep it out of direct sunlight.",
)


def write_samples(folder: Path = HERE) -> list[Path]:
    """Write every sample file into ``folder``; return their paths."""
    written = []
    for name, colour, description in PHOTOS:
        path = folder / name
        path.write_bytes(png_bytes(48, 48, colour, description=description))
        written.append(path)
    guide = folder / "care_guide.pdf"
    guide.write_bytes(pdf_bytes(list(CARE_GUIDE), title="Outdoor gear care guide"))
    written.append(guide)
    products = folder / "products.jsonl"
    products.write_text("".join(json.dumps(product) + "\n" for product in PRODUCTS), encoding="utf-8")
    written.append(products)
    return written


if __name__ == "__main__":
    for path in write_samples():
        print(f"{path.name}: {path.stat().st_size} bytes")
