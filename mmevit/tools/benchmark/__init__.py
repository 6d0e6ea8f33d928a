"""What the measuring tools share (``tools/analysis_tools/benchmark.py``,
``get_flops.py``, ``metafile.py``): timing, FLOP and parameter counts,
the models and parts they time, input checks, the equal post-processing
load of detectors, the official baseline and the table writer."""
