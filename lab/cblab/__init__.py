"""The lab: the box in network namespaces (the demo, the tests, the benchmarks). It
imports the agent; the agent never imports it, and it is not part of the box's wheel."""
