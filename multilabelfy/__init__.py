"""multilabelfy-ls: the Multilabelfy relabeling workflow on Label Studio and timm.

Stages, each findable by name in this package:
proposals (top-k label proposals from a timm model), annotation (Label Studio projects),
disagreement (who agreed), refinement (expert projects), finalize (the multi-labels),
and `multilabelfy.analysis` (what the new labels say).
"""

__version__ = "0.1.0"
