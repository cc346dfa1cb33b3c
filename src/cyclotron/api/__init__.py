"""HTTP faces. Each parses, calls one service function and shapes the answer; none touches storage."""
