"""MCsquare, the proton Monte Carlo of the opentps-core wheel, run on the editor's voxels."""
