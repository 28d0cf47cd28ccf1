"""Dataset audit: what to send to annotators first and what to fix without annotating.

- :mod:`.suspects`: images whose original label is most likely wrong or incomplete (confident learning on the
  proposals' top-k probabilities), and a priority batch for ``create-project``.
- :mod:`.duplicates`: exact and near duplicates within a split and across two splits, grouped, with the labels
  each copy carries.
- :mod:`.classes`: groups of overlapping classes from the model's confusion (synonyms, nested, co-occurring).
- :mod:`.compare`: consolidation of several relabelings of the same images (agreement, consistent subset).

Computing functions take arrays and tables and return tables; writing and drawing are apart (``.report``).
"""
