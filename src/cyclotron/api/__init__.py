"""HTTP faces: each parses, calls one service function and shapes the answer; none reads storage."""
