"""Stage 2, multi-label annotation: the template's task data (``tasks``) and annotation projects (``project``)."""
