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
    counters.py  the kernel's counters that end the stream and rate rows (perf events)
    plots.py     plot helpers; each figure rendered to its PNG and the page's SVG
    page.py      the HTML page's building blocks and its CSS
    kind.py      the interface of a result kind
    run.py       one results directory: its files, what makes it partial, summary.json
    report.py    one run's outputs: performance_report.txt, summary.json, report.html
    compare.py   several runs side by side (repeated runs: medians and verdicts)
    intervals.py the median's exact interval, CV, the bootstrap of a ratio
    repeated.py  a run of several repetitions (run_test.sh --repeat), merged
    repeat.py    python3 -m analysis.repeat settled|merge, for run_test.sh
    bench.py     the page of `make bench`

One module per result kind in kinds/, each its schemas, loading checks,
statistics, text section, plots, page section and comparison rows, listed
in kinds/__init__.py:
    latency      round trips, one row per message (latency_results.csv)
    frames       frame transfers (bandwidth_results.csv)
    stream       sustained throughput by direction and message size
    limits       each side's copy and XXH3 speed alone, the stream's bound
    sizelat      round trip by message size
    rate         latency under load, open loop, with each point's histogram
    chain        a forwarding chain, Rx -> NF -> Tx, by size, batch and touch
    transport    the other channels (transport_bench), beside ivshmem
    matrix       a grid of runs (run_test.sh --matrix) and its headline figures

A run measured several times (run_test.sh --repeat) is read by repeated.py
a repetition at a time, each as a run of its own; repeat.py is what
run_test.sh asks of it (whether the figures have settled, the merge), and
intervals.py the arithmetic of both and of bench.py's repeated parts.
"""
