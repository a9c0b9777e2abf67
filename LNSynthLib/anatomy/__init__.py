"""Anatomy conditions: TotalSegmentator classes grouped into 14 labels, weights-free fallback, LN statistics."""
