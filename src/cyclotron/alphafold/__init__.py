"""AlphaFold 3 inputs, structure import and the data-pipeline cache key, as pure functions."""
