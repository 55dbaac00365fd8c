"""Results as Markdown tables and charts a person can read, titled and oriented by the
metric registry (``eval.registry``).

* ``render``: the SEAT demo's results (main table, ablation, sweep, drift, cross-dataset);
* ``repair_tables``: a repair comparison's table and recovery x retention scatter;
* ``unlearning_tables``: the unlearning suite side by side; ``lfu_tables``: the LfU demo;
* ``markdown`` and ``charts``: number format, headings, and atomically saved figures.
"""
