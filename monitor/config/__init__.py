"""Files people edit, read into validated objects: YAML, rules, watched topics."""
