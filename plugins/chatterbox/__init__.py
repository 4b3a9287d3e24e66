"""The Chatterbox engine: checkpoints, loading and streaming synthesis (needs seqopt[chatterbox])."""
