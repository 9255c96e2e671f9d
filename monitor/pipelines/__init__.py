"""The Faust agents, one module per stage, and their batch boundary."""
