"""Available-to-promise benchmark, domain only: placements per second against dated supply and dated lines.

Without `--engine` this measures the domain's structure alone (gateway.domain.balance through gateway.domain.atp),
no store transaction in any of the four timings below. One SKU has 50 dated receipts and 10,000 dated open lines
(over 60 days); each placement is one line of 1 to 5 units for a random date, checked and, when it fits, added.

- undated: the floor, today's check (`allocation.check_placement` against the SKU's ATS, then the ATS taken).
- incremental: `atp.check_dated_placement` against a `CumulativeBalance`, then `add(day, -units)`: O(log dates).
- rescan: what the incremental structure replaces, the rule evaluated from all lines per placement (O(lines)).
- per-date scan: `atp.atp` over demand already summed by date (what a store keeping units per SKU and date would
  give it), O(dates) per placement.

Target (issue #18): the dated placement path within 2x of the undated one. With `--engine`, the bench also places
through the engine itself (`app.commands.place`, one SQLite transaction each, in-process) in one run: undated
placements on a SKU holding `--lines` undated open lines, and dated ones (a random `wanted_on`) on a SKU with
`--receipts` receipts and `--lines` dated open lines, in alternating blocks; it prints both rates, their ratio and
the verdict. The store keeps each SKU's demand by date, so a dated placement reads O(dates) rows, not its lines.

Usage: python bench/atp.py [--placements N] [--lines L] [--receipts R] [--engine]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PARTNER = "bench"
TODAY = date(2026, 12, 5)
DAYS = 60  # the dates receipts and lines fall on, from today


def engine_rates(args: argparse.Namespace) -> tuple[float, float]:
    """(undated, dated) placements per second through the engine (`app.commands.place`, one SQLite transaction
    each, in-process), in one run on one fresh store: PLAIN holds `lines` undated open lines and no receipt, DATED
    `receipts` dated receipts and `lines` open lines wanted on dates over DAYS days. Each placement is one line of
    1 to 5 units; the dated ones for a random date, checked against the ATP on it."""
    from gateway import bootstrap, logs, settings
    from gateway.domain.orders import RequestedLine
    from gateway.formats.rows import Kind

    logs.configure("json", None, "warning")
    rng = random.Random(18)
    today = datetime.now(UTC).date()  # the engine's clock is the machine's
    day = [today + timedelta(days=n) for n in range(DAYS)]
    with tempfile.TemporaryDirectory(prefix="bench-atp-") as name:
        folder = Path(name)
        config = folder / "gateway.toml"
        config.write_text(
            f'staging = "staging"\n\n[store]\nurl = "sqlite:///gateway.db"\n\n[partners.{PARTNER}]\n'
            'stock_mode = "advanced"\n',
            encoding="utf-8",
        )
        rows = ["PLAIN,10000000,", "DATED,100000,"]
        rows += [f"DATED,{rng.randint(50_000, 150_000)},{d}" for d in rng.sample(day[1:], min(args.receipts, DAYS - 1))]
        snapshot = folder / "stock.csv"
        snapshot.write_text("sku,quantity,available_from\n" + "\n".join(rows) + "\n", encoding="utf-8")
        app = bootstrap.build(settings.load(config))
        try:
            app.ingestor.ingest(PARTNER, Kind.STOCK, snapshot)
            for i in range(args.lines):
                app.commands.place(PARTNER, f"plain-{i}", [RequestedLine("PLAIN", rng.randint(1, 5))])
                app.commands.place(PARTNER, f"dated-{i}", [RequestedLine("DATED", rng.randint(1, 5))], rng.choice(day))
            timings = {"undated": 0.0, "dated": 0.0}
            for block in range(0, args.engine_placements, 100):  # alternate blocks: both see the same machine
                for sku, kind in (("PLAIN", "undated"), ("DATED", "dated")):
                    start = time.perf_counter()
                    for i in range(block, min(block + 100, args.engine_placements)):
                        on = rng.choice(day) if kind == "dated" else None
                        app.commands.place(PARTNER, f"{kind}-new-{i}", [RequestedLine(sku, rng.randint(1, 5))], on)
                    timings[kind] += time.perf_counter() - start
            return args.engine_placements / timings["undated"], args.engine_placements / timings["dated"]
        finally:
            app.close()


Dated = list[tuple[date, int]]  # (date, units) of lines


def domain_rates(args: argparse.Namespace) -> dict[str, float]:
    """Placements per second of the four domain checks, each on the same SKU, receipts and open lines."""
    from gateway.domain import allocation, atp
    from gateway.domain.errors import InsufficientStock

    rng = random.Random(18)
    day = [TODAY + timedelta(days=n) for n in range(DAYS)]
    receipts = [atp.SupplyRow(rng.randint(500, 1500), rng.choice(day[1:])) for _ in range(args.receipts)]
    schedule = atp.schedule_from_rows([atp.SupplyRow(5_000), *receipts], as_of=None)
    lines: Dated = [(rng.choice(day), rng.randint(1, 5)) for _ in range(args.lines)]
    wanted: Dated = [(rng.choice(day), rng.randint(1, 5)) for _ in range(args.placements)]
    rates: dict[str, float] = {}

    # undated floor: every unit on hand, every line today
    ats = {"SKU": schedule.on_hand + sum(units for _, units in schedule.receipts) - sum(u for _, u in lines)}
    start = time.perf_counter()
    for i, (_, units) in enumerate(wanted):
        try:
            allocation.check_placement(f"O{i}", {"SKU": units}, ats)
        except InsufficientStock:
            continue
        ats["SKU"] -= units
    rates["undated"] = len(wanted) / (time.perf_counter() - start)

    balance = atp.balance_of(schedule, atp.demand_by_day(lines, TODAY))
    balances = {"SKU": balance}
    start = time.perf_counter()
    for i, (on, units) in enumerate(wanted):
        try:
            atp.check_dated_placement(f"O{i}", {"SKU": (units, on)}, balances, TODAY)
        except InsufficientStock:
            continue
        balance.add(on, -units)
    rates["incremental"] = len(wanted) / (time.perf_counter() - start)

    held = list(lines)
    few = wanted[: args.rescan_placements]
    start = time.perf_counter()
    for on, units in few:
        if units <= atp.atp(schedule, atp.demand_by_day(held, TODAY), on, TODAY):
            held.append((on, units))
    rates["rescan"] = len(few) / (time.perf_counter() - start)

    demand = atp.demand_by_day(lines, TODAY)
    some = wanted[: args.rescan_placements * 10]
    start = time.perf_counter()
    for on, units in some:
        if units <= atp.atp(schedule, demand, on, TODAY):
            demand[on] = demand.get(on, 0) + units
    rates["by_date"] = len(some) / (time.perf_counter() - start)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--receipts", type=int, default=50)
    parser.add_argument("--rescan-placements", type=int, default=300)
    parser.add_argument(
        "--engine", action="store_true", help="also time dated and undated placements through the engine"
    )
    parser.add_argument("--engine-placements", type=int, default=2_000)
    args = parser.parse_args()

    rates = domain_rates(args)
    undated, incremental = rates["undated"], rates["incremental"]
    print(f"SKU with {args.receipts} dated receipts and {args.lines} dated open lines over {DAYS} days (domain only)")
    print(f"undated check (floor): {undated:12,.0f} placements/s")
    print(f"incremental ATP check: {incremental:12,.0f} placements/s  ({undated / incremental:.2f}x the floor)")
    print(f"rescan of all lines:   {rates['rescan']:12,.0f} placements/s  ({undated / rates['rescan']:.0f}x the floor)")
    print(
        f"per-date scan:         {rates['by_date']:12,.0f} placements/s  ({undated / rates['by_date']:.0f}x the floor)"
    )
    if args.engine:
        plain, dated = engine_rates(args)
        ratio = plain / dated
        verdict = "met" if ratio <= 2 else "NOT met"
        print(f"through the engine (SQLite, {args.engine_placements} placements each, same run):")
        print(f"undated placements:    {plain:12,.0f} placements/s")
        print(f"dated placements:      {dated:12,.0f} placements/s", end="")
        print(f"  ({ratio:.2f}x the undated time; target <= 2x: {verdict})")


if __name__ == "__main__":
    main()
