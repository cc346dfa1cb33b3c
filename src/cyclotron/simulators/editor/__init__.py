"""The YAPTIDE editor project as the engines that run it see it: a parsed model, the
geometry as voxels, the beam, and the scoring of transported steps into the project's
outputs (spec/engines.md, spec/results.md)."""
