"""Published LTX-2 weights: which repositories hold each part the fast path needs (`catalog`), and fetching
them into the diffusers layout that `--model DIR` loads (`pull`)."""
