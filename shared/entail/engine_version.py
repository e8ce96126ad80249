"""The engine's version: the one version string recorded on every decision and
batch run, so a replay or the canary can tell which engine made an answer.

A module of its own, beside the engine rather than inside ``entail.reasoning``:
importing any part of that package loads the whole engine (about 60 ms), and the
audit sink and the functions need the string, not the engine. Raise it with any
change that could alter an answer or a proof (docs/audit.md: what a replay
promises across engine versions)."""

ENGINE_VERSION = "entail-reasoning/1"
