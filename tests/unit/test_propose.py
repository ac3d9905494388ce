from sweep.propose import Prediction, disagreements


def prediction(approach, n, band):
    return Prediction(approach, n, 1e9, 2.0, band, None, None)


def test_approaches_whose_n_star_intervals_do_not_overlap_are_named():
    a1 = prediction("approach1", 1e8, (0.8e8, 1.2e8))
    a2 = prediction("approach2", 1.5e8, (1.1e8, 2e8))
    a3 = prediction("approach3", 4e8, (3e8, 5e8))
    warnings = disagreements([a3, a2, a1])
    assert len(warnings) == 2  # a3 against each of the others; a1 and a2 overlap
    assert all("approach3" in w for w in warnings)
    assert disagreements([a1, a2]) == []
    assert len(disagreements([a1, prediction("approach2", 1.3e8, None)])) == 1  # a point outside an interval
