"""Check kinds (SPEC §9): what each asks of libcurl and how it judges the answer, apart from the engine."""
