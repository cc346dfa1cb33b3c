"""The YAPTIDE face (spec/yaptide.md): accounts, simulations, results and worker reports."""
