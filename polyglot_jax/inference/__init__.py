"""The offline batch job: ``infer`` answers a task's prompts into JSONL files."""
