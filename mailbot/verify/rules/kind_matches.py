"""kind_matches: the kind the notice states (前払金保証 …) is the guarantee's kind."""

from __future__ import annotations

from .compare import FieldMatches


class KindMatches(FieldMatches):
    name = "kind_matches"
    description = "the guarantee kind on the notice matches the store"
    field = "kind"
    outcome = "kind_mismatch"
    label = "保証区分"
