//! Process containment (placeholder; see the containment issue).
