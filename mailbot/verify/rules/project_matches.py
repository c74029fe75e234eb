"""project_matches: the project name on the notice is the store's, after normalisation."""

from __future__ import annotations

from .compare import FieldMatches


class ProjectMatches(FieldMatches):
    name = "project_matches"
    description = "the project name (工事名) on the notice matches the store"
    field = "project_name"
    outcome = "project_mismatch"
    label = "工事名"
