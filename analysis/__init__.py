"""
analysis - ivshmem-bench's results made into statistics, reports and one
page per run, per comparison and per bench; analyze_results.py beside this
folder is its command line.

The shared parts, once:
    errors.py    the exit statuses and the three ways the analysis stops
    tables.py    a results CSV read and every cell checked against its Schema
    runinfo.py   run.json: provenance, status, the files a run wrote
    units.py     numbers as the reports write them, text tables
    stats.py     what the statistics share (JSON-friendly values, records)
    plots.py     plot helpers; each figure rendered to its PNG and the page's SVG
    page.py      the HTML page's building blocks and its CSS
    kind.py      the interface of a result kind
    run.py       one results directory: its files, what makes it partial, summary.json
    report.py    one run's outputs: performance_report.txt, summary.json, report.html
    compare.py   several runs side by side
    bench.py     the page of `make bench`

One module per result kind in kinds/ (latency, frames, stream, sizelat, rate,
transport), each its schemas, loading checks, statistics, text section,
plots, page section and comparison rows, listed in kinds/__init__.py.
"""
