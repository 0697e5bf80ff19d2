"""The judge stage: language identification, reference metrics and (later) LLM judges."""
